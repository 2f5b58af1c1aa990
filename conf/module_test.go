package conf

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type testGroup struct {
	Name string `conf:"name,required"`
}

type testRoster struct {
	ModuleBase
	MaxItems   int         `conf:"max-items,min=0"`
	Versioning bool        `conf:"versioning"`
	Store      Path        `conf:"store"`
	Groups     []testGroup `conf:"group"`
}

func (c *testRoster) Validate() error {
	var errs []error
	if c.MaxItems > 5000 {
		errs = append(errs, AttrError("max-items", "must not exceed %d", 5000))
	}
	if c.Versioning && c.MaxItems == 1 {
		errs = append(errs, errors.New("versioning needs more than one item"))
	}
	return errors.Join(errs...)
}

type testPing struct { // no ModuleBase: enabled is kept by Config
	Interval time.Duration `conf:"interval"`
}

type testOff struct {
	ModuleBase
	Greeting string `conf:"greeting"`
}

func registerTestModules(t *testing.T) {
	t.Helper()
	RegisterModule("test-roster", func() any { return &testRoster{MaxItems: 100, Store: "roster.db"} })
	RegisterModule("test-ping", func() any { return &testPing{Interval: time.Minute} })
	RegisterModule("test-off", func() any {
		c := &testOff{Greeting: "hi"}
		c.SetEnabled(false)
		return c
	})
	t.Cleanup(func() {
		unregisterModule("test-roster")
		unregisterModule("test-ping")
		unregisterModule("test-off")
	})
}

func TestModuleDefaults(t *testing.T) {
	registerTestModules(t)
	if got, want := RegisteredModules(), []string{"test-off", "test-ping", "test-roster"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("RegisteredModules = %q, want %q", got, want)
	}
	for _, c := range []*Config{Default("/data"), mustParse(t, "<xmppd/>"), mustParse(t, "<xmppd><modules/></xmppd>")} {
		r, ok := c.Module("test-roster").(*testRoster)
		if !ok {
			t.Fatalf("Module(test-roster) = %T", c.Module("test-roster"))
		}
		if r.MaxItems != 100 || r.Store != "/data/roster.db" || !r.Enabled() {
			t.Errorf("roster defaults: %+v", r)
		}
		if p := c.Module("test-ping").(*testPing); p.Interval != time.Minute {
			t.Errorf("ping defaults: %+v", p)
		}
		for name, want := range map[string]bool{"test-roster": true, "test-ping": true, "test-off": false, "nope": false} {
			if got := c.ModuleEnabled(name); got != want {
				t.Errorf("ModuleEnabled(%q) = %v, want %v", name, got, want)
			}
		}
		if c.Module("nope") != nil {
			t.Error("Module(nope) is not nil")
		}
	}
	// Each Config gets its own module values.
	a, b := Default("/d"), Default("/d")
	if a.Module("test-roster") == b.Module("test-roster") {
		t.Error("module config shared between Configs")
	}
}

func TestModuleOverrides(t *testing.T) {
	registerTestModules(t)
	c := mustParse(t, `<xmppd>
  <modules>
    <test-roster max-items="10" versioning="true" store="/var/r.db">
      <group name="friends"/>
      <group name="work"/>
    </test-roster>
    <test-ping enabled="no" interval="5s"/>
    <test-off enabled="true" greeting="hello"/>
  </modules>
</xmppd>`)
	r := c.Module("test-roster").(*testRoster)
	want := &testRoster{MaxItems: 10, Versioning: true, Store: "/var/r.db", Groups: []testGroup{{"friends"}, {"work"}}}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("roster = %+v, want %+v", r, want)
	}
	if c.ModuleEnabled("test-ping") || c.Module("test-ping").(*testPing).Interval != 5*time.Second {
		t.Errorf("ping: enabled=%v %+v", c.ModuleEnabled("test-ping"), c.Module("test-ping"))
	}
	if !c.ModuleEnabled("test-off") || c.Module("test-off").(*testOff).Greeting != "hello" {
		t.Errorf("off: enabled=%v %+v", c.ModuleEnabled("test-off"), c.Module("test-off"))
	}
	// enabled="false" on a ModuleBase module is visible to the module itself.
	c = mustParse(t, `<xmppd><modules><test-roster enabled="false"/></modules></xmppd>`)
	if c.ModuleEnabled("test-roster") || c.Module("test-roster").(*testRoster).Enabled() {
		t.Error("test-roster still enabled")
	}
}

func TestModuleErrors(t *testing.T) {
	registerTestModules(t)
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"unregistered module", "<xmppd><modules>\n<roster/>\n</modules></xmppd>", []string{
			`:2: xmppd/modules/roster: unknown module <roster> (known modules: test-off, test-ping, test-roster)`}},
		{"unknown attribute", "<xmppd><modules>\n<test-ping intervall=\"5s\"/>\n</modules></xmppd>", []string{
			`:2: xmppd/modules/test-ping@intervall: unknown attribute (known attributes: enabled, interval)`}},
		{"bad enabled", "<xmppd><modules>\n<test-ping enabled=\"sometimes\"/>\n</modules></xmppd>", []string{
			`:2: xmppd/modules/test-ping@enabled: "sometimes" is not a boolean (true/false, yes/no, 1/0)`}},
		{"module twice", "<xmppd><modules>\n<test-ping/>\n<test-ping/>\n</modules></xmppd>", []string{
			`:3: xmppd/modules/test-ping: module given twice (first at line 2)`}},
		{"attribute on modules", "<xmppd>\n<modules all=\"off\"/>\n</xmppd>", []string{
			`:2: xmppd/modules@all: unknown attribute (<modules> has none)`}},
		{"tag bound", "<xmppd><modules>\n<test-roster\n  max-items=\"-3\"/>\n</modules></xmppd>", []string{
			`:3: xmppd/modules/test-roster@max-items: -3 is less than the minimum 0`}},
		{"Validate with AttrError", "<xmppd><modules>\n<test-roster versioning=\"true\"\n  max-items=\"6000\"/>\n</modules></xmppd>", []string{
			`:3: xmppd/modules/test-roster@max-items: must not exceed 5000`}},
		{"Validate with a plain error", "<xmppd><modules>\n<test-roster versioning=\"true\"\n  max-items=\"1\"/>\n</modules></xmppd>", []string{
			`:2: xmppd/modules/test-roster: versioning needs more than one item`}},
		{"nested required", "<xmppd><modules>\n<test-roster>\n<group/>\n</test-roster>\n</modules></xmppd>", []string{
			`:3: xmppd/modules/test-roster/group@name: missing required attribute`}},
		{"nested unknown", "<xmppd><modules>\n<test-roster>\n<grop name=\"x\"/>\n</test-roster>\n</modules></xmppd>", []string{
			`:3: xmppd/modules/test-roster/grop: unknown element <grop> (known elements: group)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.doc)
			var want []string
			for _, w := range tc.want {
				want = append(want, file+w)
			}
			if got := errLines(t, err); !reflect.DeepEqual(got, want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
	// Validate on a Config changed in Go reaches the modules too.
	c := Default("/data")
	c.Module("test-roster").(*testRoster).MaxItems = 9000
	if err := c.Validate(); err == nil || err.Error() != "xmppd/modules/test-roster@max-items: must not exceed 5000" {
		t.Errorf("Validate: %v", err)
	}
}

// A module's settings must be in the example: CheckExample notices.
func TestCheckExampleWithModules(t *testing.T) {
	registerTestModules(t)
	withCoreExample(t)
	err := CheckExample()
	if err == nil {
		t.Fatal("CheckExample passed without the modules' sections")
	}
	for _, want := range []string{
		"xmppd/modules/test-roster is not in the example",
		"xmppd/modules/test-roster@max-items is not in the example",
		"xmppd/modules/test-roster/group@name is not in the example",
		"xmppd/modules/test-ping@interval is not in the example",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CheckExample error lacks %q:\n%v", want, err)
		}
	}
	// With the sections written (defaults, and a list item as an example of
	// a list element), it passes, and the enabled attribute is checked too.
	withSections := strings.Replace(string(example), "<modules>\n", `<modules>
    <test-off enabled="false" greeting="hi"/>
    <test-ping enabled="true" interval="1m"/>
    <test-roster enabled="true" max-items="100" versioning="false" store="roster.db">
    </test-roster>
`, 1)
	err = exampleProblems([]byte(withSections), false, RegisteredModules())
	if err == nil || !strings.Contains(err.Error(), "xmppd/modules/test-roster/group is not in the example") {
		t.Errorf("got %v", err)
	}
	// A list whose default is empty is documented by a commented-out item.
	withSections = strings.Replace(withSections, "</test-roster>", "  <!-- <group name=\"friends\"/> -->\n    </test-roster>", 1)
	if err := exampleProblems([]byte(withSections), false, RegisteredModules()); err != nil {
		t.Errorf("complete example refused: %v", err)
	}
	// ... but a commented-out item with a misspelled attribute does not count.
	typo := strings.Replace(withSections, `<group name="friends"/>`, `<group nam="friends"/>`, 1)
	if err := exampleProblems([]byte(typo), false, RegisteredModules()); err == nil || !strings.Contains(err.Error(), "test-roster/group@name is not in the example") {
		t.Errorf("got %v", err)
	}
	bad := strings.Replace(withSections, `<test-off enabled="false"`, `<test-off enabled="true"`, 1)
	err = exampleProblems([]byte(bad), false, RegisteredModules())
	if err == nil || !strings.Contains(err.Error(), `xmppd/modules/test-off@enabled: the example says "true" but the default is "false"`) {
		t.Errorf("got %v", err)
	}
}

func TestRegisterModulePanics(t *testing.T) {
	type badTag struct {
		X int `conf:"x,min=abc"`
	}
	type badType struct {
		X chan int `conf:"x"`
	}
	type ownEnabled struct {
		On bool `conf:"enabled"`
	}
	type dupName struct {
		A string `conf:"a"`
		B string `conf:"a"`
	}
	type unexported struct {
		a string `conf:"a"`
	}
	RegisterModule("test-dup", func() any { return &testPing{} })
	t.Cleanup(func() { unregisterModule("test-dup") })
	for name, reg := range map[string]func(){
		"duplicate":   func() { RegisterModule("test-dup", func() any { return &testPing{} }) },
		"bad name":    func() { RegisterModule("has space", func() any { return &testPing{} }) },
		"not pointer": func() { RegisterModule("test-x", func() any { return testPing{} }) },
		"nil":         func() { RegisterModule("test-x", func() any { return nil }) },
		"nil pointer": func() { RegisterModule("test-x", func() any { return (*testPing)(nil) }) },
		"bad bound":   func() { RegisterModule("test-x", func() any { return &badTag{} }) },
		"bad type":    func() { RegisterModule("test-x", func() any { return &badType{} }) },
		"enabled":     func() { RegisterModule("test-x", func() any { return &ownEnabled{} }) },
		"same name":   func() { RegisterModule("test-x", func() any { return &dupName{} }) },
		"unexported":  func() { RegisterModule("test-x", func() any { return &unexported{a: ""} }) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
				unregisterModule("test-x")
			}()
			reg()
		})
	}
}
