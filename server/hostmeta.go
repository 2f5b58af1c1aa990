package server

import (
	"encoding/json"
	"net/http"
	"strings"
)

// hostMeta serves XEP-0156 discovery of the WebSocket and BOSH endpoints
// at /.well-known/host-meta (XRD) and /.well-known/host-meta.json (JRD).
func hostMeta(wsPath, boshPath string, jsonForm bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		secure := r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
		ws, web := "ws", "http"
		if secure {
			ws, web = "wss", "https"
		}
		type link struct{ rel, href string }
		var links []link
		if wsPath != "" {
			links = append(links, link{"urn:xmpp:alt-connections:websocket", ws + "://" + r.Host + wsPath})
		}
		if boshPath != "" {
			links = append(links, link{"urn:xmpp:alt-connections:xbosh", web + "://" + r.Host + boshPath})
		}
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if jsonForm {
			w.Header().Set("Content-Type", "application/json")
			out := []map[string]string{}
			for _, l := range links {
				out = append(out, map[string]string{"rel": l.rel, "href": l.href})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"links": out})
			return
		}
		w.Header().Set("Content-Type", "application/xrd+xml")
		var b strings.Builder
		b.WriteString("<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n")
		for _, l := range links {
			b.WriteString("  <Link rel='" + l.rel + "' href='")
			b.WriteString(xmlAttrEscape(l.href))
			b.WriteString("'/>\n")
		}
		b.WriteString("</XRD>\n")
		_, _ = w.Write([]byte(b.String()))
	}
}

func xmlAttrEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "'", "&apos;", "<", "&lt;", "\"", "&quot;").Replace(s)
}
