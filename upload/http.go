package upload

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// csp forbids everything to a served file: no scripts, styles, frames,
// forms, nor being framed; sandbox makes an HTML or SVG file that is opened
// anyway an opaque origin.
const csp = "default-src 'none'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'; sandbox"

// bufSize is the copy buffer of a PUT: the only memory an upload holds.
const bufSize = 128 << 10

// putIdle is how long a PUT may send nothing (per buffer filled) before
// it is cut off, so a stalled client cannot hold a slot forever.
const putIdle = time.Minute

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// ServeHTTP serves Path: PUT to upload, GET and HEAD to download, OPTIONS
// for CORS preflights. Anything but /upload/ID/NAME, with an id the server
// generated and the slot's own file name, is 404.
func (m *Module) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, Content-Disposition, ETag, Last-Modified")
	h.Set("Access-Control-Max-Age", "86400")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "no-referrer")

	id, name, ok := parsePath(r.URL)
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPut:
		m.put(w, r, id, name)
	case http.MethodGet, http.MethodHead:
		m.get(w, r, id, name)
	default:
		h.Set("Allow", "GET, HEAD, PUT, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// parsePath takes the escaped path apart: exactly Path + ID + "/" + NAME,
// where ID is a slot id and NAME one escaped path segment.
func parsePath(u *url.URL) (id, name string, ok bool) {
	rest, ok := strings.CutPrefix(u.EscapedPath(), Path)
	if !ok {
		return "", "", false
	}
	id, esc, ok := strings.Cut(rest, "/")
	if !ok || !validID(id) || esc == "" || strings.Contains(esc, "/") {
		return "", "", false
	}
	name, err := url.PathUnescape(esc)
	if err != nil || name == "" || strings.ContainsAny(name, "/\\\x00") {
		return "", "", false
	}
	return id, name, true
}

func (m *Module) put(w http.ResponseWriter, r *http.Request, id, name string) {
	now := m.now()
	s, ok := m.st.lookup(id)
	if !ok || s.Name != name {
		http.Error(w, "no such upload slot", http.StatusForbidden)
		return
	}
	switch err := checkToken(m.secret, &s, r.Header.Get("Authorization"), now); {
	case errors.Is(err, errTokenExpired):
		http.Error(w, "the upload URL has expired", http.StatusForbidden)
		return
	case err != nil:
		http.Error(w, "bad authorization", http.StatusForbidden)
		return
	}
	if s.state != statePending {
		http.Error(w, "this slot has been used", http.StatusConflict)
		return
	}
	switch {
	case r.ContentLength < 0:
		http.Error(w, "Content-Length is required", http.StatusLengthRequired)
		return
	case r.ContentLength > s.Size:
		http.Error(w, "Content-Length is larger than the slot's size "+strconv.FormatInt(s.Size, 10), http.StatusRequestEntityTooLarge)
		return
	case r.ContentLength < s.Size:
		http.Error(w, "Content-Length is not the slot's size "+strconv.FormatInt(s.Size, 10), http.StatusBadRequest)
		return
	}
	served, ok := m.putType(&s, r.Header.Get("Content-Type"))
	if !ok {
		http.Error(w, "Content-Type does not match the slot", http.StatusUnsupportedMediaType)
		return
	}
	f, err := m.st.claim(id, now)
	switch {
	case errors.Is(err, errUsed):
		http.Error(w, "this slot has been used", http.StatusConflict)
		return
	case errors.Is(err, errExpired):
		http.Error(w, "the upload URL has expired", http.StatusForbidden)
		return
	case errors.Is(err, errNoSlot):
		http.Error(w, "no such upload slot", http.StatusForbidden)
		return
	case err != nil:
		m.log.Error("upload: creating a file", "id", id, "error", err)
		http.Error(w, "cannot store the file", http.StatusInternalServerError)
		return
	}
	rc := http.NewResponseController(w)
	n, rerr, err := copyBody(f, r.Body, func() { _ = rc.SetReadDeadline(time.Now().Add(putIdle)) })
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && (rerr != nil || n != s.Size) {
		m.st.abandon(id)
		http.Error(w, "the request body ended before the slot's size", http.StatusBadRequest)
		return
	}
	if err == nil {
		err = m.st.commit(id, served, m.now().UTC())
	}
	if err != nil {
		m.st.abandon(id)
		m.log.Error("upload: storing a file", "id", id, "error", err)
		code := http.StatusInternalServerError
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			code = http.StatusInsufficientStorage
		}
		http.Error(w, "cannot store the file", code)
		return
	}
	w.WriteHeader(http.StatusCreated)
	m.log.Debug("upload: stored", "id", id, "owner", s.Owner, "size", n)
}

// putType checks the PUT's Content-Type against the slot and returns the
// type to serve. A slot that named a type needs the same media type
// (parameters aside); one that did not takes the PUT's, if it is allowed,
// or application/octet-stream.
func (m *Module) putType(s *slot, header string) (string, bool) {
	full, media, ok := canonType(header)
	if !ok {
		return "", false
	}
	if s.Type != "" {
		want, _, _ := mime.ParseMediaType(s.Type)
		return s.Type, media == want
	}
	if media == "" {
		return octetStream, true
	}
	return full, m.cfg.typeAllowed(media)
}

// copyBody streams src to dst through one pooled buffer (no ReadFrom or
// WriteTo shortcuts, which would bring their own). It tells a failed read
// (the client's fault) from a failed write (ours). progress is called
// before each buffer is filled (it moves the read deadline).
func copyBody(dst *os.File, src io.Reader, progress func()) (n int64, rerr, werr error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		progress()
		k, err := io.ReadFull(src, buf)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return n, nil, werr
			}
			n += int64(k)
		}
		if err == io.EOF {
			return n, nil, nil
		}
		if err != nil {
			return n, err, nil
		}
	}
}

func (m *Module) get(w http.ResponseWriter, r *http.Request, id, name string) {
	now := m.now()
	s, ok := m.st.lookup(id)
	if !ok || s.state != stateStored || s.Name != name {
		http.NotFound(w, r)
		return
	}
	exp := s.expires(m.cfg.ExpireAfter)
	if !exp.IsZero() && !now.Before(exp) {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(m.st.dataPath(id))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", s.Served)
	h.Set("Content-Disposition", disposition(s.Served, s.Name))
	h.Set("ETag", `"`+id+`"`)
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	maxAge := int64(365 * 24 * 3600)
	if !exp.IsZero() {
		maxAge = min(maxAge, int64(exp.Sub(now)/time.Second))
	}
	h.Set("Cache-Control", "public, max-age="+strconv.FormatInt(maxAge, 10)+", immutable")
	http.ServeContent(w, r, "", s.Uploaded, f)
}

// disposition is inline for images, audio and video (but not SVG, which
// can carry scripts), attachment for everything else.
func disposition(served, name string) string {
	media, _, _ := mime.ParseMediaType(served)
	kind := "attachment"
	if t, _, _ := strings.Cut(media, "/"); (t == "image" || t == "audio" || t == "video") && media != "image/svg+xml" {
		kind = "inline"
	}
	if v := mime.FormatMediaType(kind, map[string]string{"filename": name}); v != "" {
		return v
	}
	return kind
}
