package conf

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add(example)
	f.Add([]byte("<xmppd/>"))
	f.Add([]byte("<xmppd><listeners><!-- <c2s address=\"x\"><y z=\"1\"/></c2s> --></listeners><modules><!-- <m enabled=\"1\"/> --></modules></xmppd>"))
	f.Add([]byte("<xmppd><hosts><host name=\"a\"/></hosts><listeners><c2s address=\":1\"/></listeners></xmppd>"))
	f.Add([]byte("<xmppd><modules><x enabled='no'/></modules></xmppd>"))
	f.Add([]byte("<xmppd>\n<tls cert=\"a\" cert=\"b\"/>\n<!DOCTYPE x><?pi?>text</xmppd><xmppd/>"))
	f.Add([]byte("<a:xmppd xmlns:a='u' a:b='c'><limits max-stanza-size='1TiB' ping-interval='-1'/></a:xmppd>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(bytes.NewReader(data), "fuzz.xml", "/data")
		if err != nil {
			if c != nil {
				t.Fatal("Config returned with an error")
			}
			var list Errors
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty Errors: %T %v", err, err)
			}
			for _, e := range list {
				if !strings.HasPrefix(e.Error(), "fuzz.xml") || e.Path == "" || !strings.HasPrefix(e.Path, "xmppd") {
					t.Fatalf("badly located error: %q (%+v)", e.Error(), e)
				}
			}
			return
		}
		if c == nil {
			t.Fatal("nil Config without error")
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		for _, h := range c.Hosts {
			if !c.IsLocal(h) {
				t.Fatalf("IsLocal(%q) false for a configured host", h)
			}
		}
	})
}
