package conf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Error is one problem in a configuration, located in its file.
// Its text is
//
//	FILE:LINE: PATH@ATTR: MESSAGE
//
// for example
//
//	/etc/xmppd.xml:12: xmppd/listeners/c2s@address: "127.0.0.1:99999" is not a host:port: port 99999 is out of range 0-65535
//
// "FILE:LINE: " is left out for a configuration that did not come from a file
// (Default, or one built in Go), and "@ATTR" when the problem is the element
// itself.
type Error struct {
	File   string // file name as given to Load or Parse; "" if none
	Line   int    // 1-based; 0 if unknown
	Column int    // 1-based byte column; 0 if unknown
	Path   string // element path from the root, e.g. "xmppd/listeners/c2s"
	Attr   string // attribute name, "" for the element
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Key())
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Key returns "PATH@ATTR" or "PATH".
func (e *Error) Key() string {
	if e.Attr == "" {
		return e.Path
	}
	return e.Path + "@" + e.Attr
}

// Errors is every problem found in a configuration, in file order for parse
// errors followed by validation errors. Load, Parse and Validate return it
// (never an empty one). errors.As(err, &conf.Errors{}) gets at the list;
// errors.As(err, new(*conf.Error)) finds the first.
type Errors []*Error

func (l Errors) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the individual errors.
func (l Errors) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

type attrError struct {
	attr string
	msg  string
}

func (e *attrError) Error() string { return e.attr + ": " + e.msg }

// AttrError returns an error for a module's Validate method (possibly wrapped
// or joined with others) that blames one attribute of the module's element,
// so the message carries that attribute's line:
//
//	return conf.AttrError("max-items", "must not exceed %d", 100)
//
// on <offline max-items="1000"/> reads
// "FILE:LINE: xmppd/modules/offline@max-items: must not exceed 100".
// Any other error is reported against the module's element.
func AttrError(attr string, format string, args ...any) error {
	return &attrError{attr: attr, msg: fmt.Sprintf(format, args...)}
}

// splitModuleErr flattens errors.Join trees and picks out AttrErrors.
func splitModuleErr(err error) (attrs []string, msgs []string) {
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ae *attrError
		if errors.As(err, &ae) {
			attrs = append(attrs, ae.attr)
			if err == error(ae) {
				msgs = append(msgs, ae.msg)
			} else {
				// A wrapped AttrError: keep the wrapping context.
				msgs = append(msgs, err.Error())
			}
			return
		}
		attrs = append(attrs, "")
		msgs = append(msgs, err.Error())
	}
	walk(err)
	return attrs, msgs
}
