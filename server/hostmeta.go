package server

import (
	"encoding/json"
	"net/http"
	"strings"
)

// hostMeta serves XEP-0156 discovery of the WebSocket endpoint at
// /.well-known/host-meta (XRD) and /.well-known/host-meta.json (JRD).
func hostMeta(wsPath string, jsonForm bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		scheme := "ws"
		if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
			scheme = "wss"
		}
		href := scheme + "://" + r.Host + wsPath
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if jsonForm {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"links": []map[string]string{{"rel": "urn:xmpp:alt-connections:websocket", "href": href}},
			})
			return
		}
		w.Header().Set("Content-Type", "application/xrd+xml")
		var b strings.Builder
		b.WriteString("<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n")
		b.WriteString("  <Link rel='urn:xmpp:alt-connections:websocket' href='")
		b.WriteString(xmlAttrEscape(href))
		b.WriteString("'/>\n</XRD>\n")
		_, _ = w.Write([]byte(b.String()))
	}
}

func xmlAttrEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "'", "&apos;", "<", "&lt;", "\"", "&quot;").Replace(s)
}
