package conf

import (
	_ "embed"
	"errors"
	"fmt"
	"reflect"
	"sort"
)

//go:embed xmppd.example.xml
var example []byte

// Example returns the commented example configuration file
// (conf/xmppd.example.xml), which spells out every setting with its default.
func Example() []byte { return append([]byte(nil), example...) }

// CheckExample verifies that the example file is complete and true for the
// modules linked into the program: it parses and validates with the
// registered modules, every element and attribute of Config and of every
// registered module appears in it (commented-out elements such as
// <!-- <item x="…"/> --> count, for lists whose default is empty), and every
// value it writes is the default.
// A test of the program that links all modules (cmd/xmppd) calls it, so a
// module that adds a setting must document it in conf/xmppd.example.xml.
func CheckExample() error {
	return exampleProblems(example, false, RegisteredModules())
}

// exampleProblems checks data as CheckExample does. anyModule accepts module
// elements for modules not registered (conf's own tests link none); modules
// are the modules whose keys must appear.
func exampleProblems(data []byte, anyModule bool, modules []string) error {
	const dataDir = "/example-data"
	c, d := decode(data, "xmppd.example.xml", dataDir, anyModule)
	errs := d.errs
	if !d.aborted {
		errs = append(errs, c.validate(d.bad)...)
	}
	if len(errs) > 0 {
		return errs
	}
	var problems []error
	missing := func(key string) {
		if !d.seen[key] {
			problems = append(problems, fmt.Errorf("xmppd.example.xml: %s is not in the example", key))
		}
	}
	values := func(c *Config) map[string]string {
		out := map[string]string{}
		rec := func(f *field, v reflect.Value, key string) { out[key] = formatScalar(v) }
		root := reflect.ValueOf(c).Elem()
		walkValues(root, infoFor(root.Type()), "xmppd", rec)
		for _, name := range modules {
			if m, ok := c.Modules[name]; ok {
				mv := reflect.ValueOf(m).Elem()
				walkValues(mv, infoFor(mv.Type()), "xmppd/modules/"+name, rec)
				out["xmppd/modules/"+name+"@enabled"] = fmt.Sprint(c.ModuleEnabled(name))
			}
		}
		return out
	}

	walkKeys(infoFor(reflect.TypeFor[Config]()), "xmppd", func(key string, f *field) { missing(key) })
	for _, name := range modules {
		m, ok := c.Modules[name]
		if !ok {
			continue
		}
		key := "xmppd/modules/" + name
		missing(key)
		walkKeys(infoFor(reflect.TypeOf(m).Elem()), key, func(key string, f *field) { missing(key) })
	}

	got, want := values(c), values(Default(dataDir))
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if got[k] != want[k] {
			e := c.errAt(k, fmt.Sprintf("the example says %q but the default is %q", got[k], want[k]))
			problems = append(problems, e)
		}
	}
	if len(got) != len(want) {
		problems = append(problems, fmt.Errorf("xmppd.example.xml: lists differ in length from the defaults (%d values, defaults have %d)", len(got), len(want)))
	}
	return errors.Join(problems...)
}
