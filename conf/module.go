package conf

import (
	"fmt"
	"reflect"
	"sort"
	"sync"
)

// ModuleBase may be embedded (untagged) in a module's configuration struct.
// It holds the generic enabled="…" attribute so the module can read it
// itself, and lets a module be off by default:
//
//	type Config struct {
//		conf.ModuleBase
//		MaxItems int `conf:"max-items,min=0"`
//	}
//	conf.RegisterModule("offline", func() any {
//		c := &Config{MaxItems: 1000}
//		c.SetEnabled(false) // off unless <offline enabled="true"/>
//		return c
//	})
//
// Its zero value is enabled.
type ModuleBase struct {
	disabled bool
}

// Enabled reports whether the module is on.
func (b ModuleBase) Enabled() bool { return !b.disabled }

// SetEnabled turns the module on or off.
func (b *ModuleBase) SetEnabled(on bool) { b.disabled = !on }

func (b *ModuleBase) moduleBase() *ModuleBase { return b }

type module struct {
	name       string
	newDefault func() any
}

var registry struct {
	sync.Mutex
	m map[string]module
}

// RegisterModule declares the configuration section <modules><NAME …/></modules>
// of a module. newDefault returns a new pointer to a struct carrying conf
// tags (see the package documentation) and holding the module's defaults; it
// is called once for every Config made afterwards. If the struct has a method
// Validate() error, Config.Validate calls it (errors from AttrError point at
// one attribute). Every module element accepts enabled="true|false".
//
// Call it from an init function of the module's package. It panics if name
// is taken, is not a valid element name, or the struct's tags are malformed.
func RegisterModule(name string, newDefault func() any) {
	if !validName(name) {
		panic(fmt.Sprintf("conf: RegisterModule: bad name %q", name))
	}
	v := newDefault()
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct || reflect.ValueOf(v).IsNil() {
		panic(fmt.Sprintf("conf: RegisterModule(%q): newDefault must return a non-nil pointer to a struct, not %T", name, v))
	}
	si := infoFor(t.Elem()) // panics on bad tags
	if _, ok := si.attrs["enabled"]; ok {
		panic(fmt.Sprintf("conf: RegisterModule(%q): the enabled attribute is generic; embed conf.ModuleBase instead of tagging a field \"enabled\"", name))
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.m == nil {
		registry.m = map[string]module{}
	}
	if _, dup := registry.m[name]; dup {
		panic(fmt.Sprintf("conf: RegisterModule: module %q registered twice", name))
	}
	registry.m[name] = module{name: name, newDefault: newDefault}
}

// RegisteredModules returns the names of the registered modules, sorted.
func RegisteredModules() []string {
	ms := registered()
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.name
	}
	return names
}

func registered() []module {
	registry.Lock()
	defer registry.Unlock()
	out := make([]module, 0, len(registry.m))
	for _, m := range registry.m {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// unregisterModule is for tests.
func unregisterModule(name string) {
	registry.Lock()
	defer registry.Unlock()
	delete(registry.m, name)
}
