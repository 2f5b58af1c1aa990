package pep

import (
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Access models (XEP-0060 §4.5). "authorize" is not offered.
const (
	AccessOpen      = "open"
	AccessPresence  = "presence"
	AccessRoster    = "roster"
	AccessWhitelist = "whitelist"
)

// Values of pubsub#send_last_published_item.
const (
	SendLastNever       = "never"
	SendLastOnSub       = "on_sub"
	SendLastOnSubAndPre = "on_sub_and_presence"
)

// Node configuration field names (XEP-0060 §16.4.3).
const (
	fTitle         = "pubsub#title"
	fType          = "pubsub#type"
	fAccessModel   = "pubsub#access_model"
	fRosterGroups  = "pubsub#roster_groups_allowed"
	fMaxItems      = "pubsub#max_items"
	fPersistItems  = "pubsub#persist_items"
	fSendLast      = "pubsub#send_last_published_item"
	fDeliverNotif  = "pubsub#deliver_notifications"
	fDeliverPayl   = "pubsub#deliver_payloads"
	fNotifyRetract = "pubsub#notify_retract"
	fNotifyDelete  = "pubsub#notify_delete"
	fPublishModel  = "pubsub#publish_model"
)

// nodeConfig is a node's configuration, typed.
type nodeConfig struct {
	Title        string
	Type         string
	AccessModel  string
	RosterGroups []string // sorted, unique
	// MaxItems is the configured pubsub#max_items; 0 means "max" (the
	// service's limit, whatever it is at the time).
	MaxItems             int
	PersistItems         bool
	SendLast             string
	DeliverNotifications bool
	DeliverPayloads      bool
	NotifyRetract        bool
	NotifyDelete         bool
}

// defaultConfig is what a node gets unless told otherwise (XEP-0163 §8:
// presence access, notifications with payloads, last item on presence).
func defaultConfig() nodeConfig {
	return nodeConfig{
		AccessModel:          AccessPresence,
		MaxItems:             1,
		PersistItems:         true,
		SendLast:             SendLastOnSubAndPre,
		DeliverNotifications: true,
		DeliverPayloads:      true,
		NotifyRetract:        true,
		NotifyDelete:         true,
	}
}

// errInvalid is a field value the service does not accept.
type errInvalid struct{ field, value, why string }

func (e *errInvalid) Error() string {
	return "invalid value " + strconv.Quote(e.value) + " for " + e.field + ": " + e.why
}

// errUnknownField is a field the service does not know.
var errUnknownField = errors.New("unknown field")

func one(field string, values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", nil
	case 1:
		return values[0], nil
	}
	return "", &errInvalid{field, strings.Join(values, ","), "one value expected"}
}

func boolField(field string, values []string) (bool, error) {
	v, err := one(field, values)
	if err != nil {
		return false, err
	}
	b, ok := parseBool(v)
	if !ok {
		return false, &errInvalid{field, v, "not a boolean"}
	}
	return b, nil
}

// set applies one field. maxItems is the service's limit (for
// pubsub#max_items).
func (c *nodeConfig) set(field string, values []string, maxItems int) error {
	switch field {
	case fTitle, fType:
		v, err := one(field, values)
		if err != nil {
			return err
		}
		if field == fTitle {
			c.Title = v
		} else {
			c.Type = v
		}
	case fAccessModel:
		v, err := one(field, values)
		if err != nil {
			return err
		}
		switch v {
		case AccessOpen, AccessPresence, AccessRoster, AccessWhitelist:
			c.AccessModel = v
		default:
			return &errInvalid{field, v, "unsupported access model"}
		}
	case fRosterGroups:
		g := slices.Clone(values)
		slices.Sort(g)
		c.RosterGroups = slices.Compact(g)
	case fMaxItems:
		v, err := one(field, values)
		if err != nil {
			return err
		}
		v = strings.TrimSpace(v)
		if v == "max" {
			c.MaxItems = 0
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return &errInvalid{field, v, "a positive number or 'max' expected"}
		}
		if n > maxItems {
			return &errInvalid{field, v, "the most this service keeps is " + strconv.Itoa(maxItems)}
		}
		c.MaxItems = n
	case fPersistItems, fDeliverNotif, fDeliverPayl, fNotifyRetract, fNotifyDelete:
		b, err := boolField(field, values)
		if err != nil {
			return err
		}
		switch field {
		case fPersistItems:
			c.PersistItems = b
		case fDeliverNotif:
			c.DeliverNotifications = b
		case fDeliverPayl:
			c.DeliverPayloads = b
		case fNotifyRetract:
			c.NotifyRetract = b
		case fNotifyDelete:
			c.NotifyDelete = b
		}
	case fSendLast:
		v, err := one(field, values)
		if err != nil {
			return err
		}
		switch v {
		case SendLastNever, SendLastOnSub, SendLastOnSubAndPre:
			c.SendLast = v
		default:
			return &errInvalid{field, v, "unsupported value"}
		}
	case fPublishModel:
		// Only the owner publishes to a PEP node (XEP-0163 §1).
		v, err := one(field, values)
		if err != nil {
			return err
		}
		if v != "publishers" {
			return &errInvalid{field, v, "only 'publishers' is supported"}
		}
	default:
		return errUnknownField
	}
	return nil
}

// get returns the values of one field as the configuration form shows them.
func (c *nodeConfig) get(field string) []string {
	b := func(v bool) []string {
		if v {
			return []string{"1"}
		}
		return []string{"0"}
	}
	switch field {
	case fTitle:
		return []string{c.Title}
	case fType:
		return []string{c.Type}
	case fAccessModel:
		return []string{c.AccessModel}
	case fRosterGroups:
		return slices.Clone(c.RosterGroups)
	case fMaxItems:
		if c.MaxItems == 0 {
			return []string{"max"}
		}
		return []string{strconv.Itoa(c.MaxItems)}
	case fPersistItems:
		return b(c.PersistItems)
	case fSendLast:
		return []string{c.SendLast}
	case fDeliverNotif:
		return b(c.DeliverNotifications)
	case fDeliverPayl:
		return b(c.DeliverPayloads)
	case fNotifyRetract:
		return b(c.NotifyRetract)
	case fNotifyDelete:
		return b(c.NotifyDelete)
	case fPublishModel:
		return []string{"publishers"}
	}
	return nil
}

// storedFields are the fields kept in storage.
var storedFields = []string{fTitle, fType, fAccessModel, fRosterGroups, fMaxItems, fPersistItems,
	fSendLast, fDeliverNotif, fDeliverPayl, fNotifyRetract, fNotifyDelete}

// toMap is the configuration as storage keeps it.
func (c *nodeConfig) toMap() map[string][]string {
	m := make(map[string][]string, len(storedFields))
	for _, f := range storedFields {
		m[f] = c.get(f)
	}
	return m
}

// configFromMap reads a stored configuration; missing or unreadable fields
// keep their defaults.
func configFromMap(m map[string][]string) nodeConfig {
	c := defaultConfig()
	for f, v := range m {
		_ = c.set(f, v, int(^uint(0)>>1))
	}
	return c
}

// effectiveMax is how many items the node keeps with the service's limit.
func (c *nodeConfig) effectiveMax(limit int) int {
	if !c.PersistItems {
		return 1
	}
	if c.MaxItems == 0 || c.MaxItems > limit {
		return limit
	}
	return c.MaxItems
}

// meets reports whether the node satisfies a publish-options precondition
// (XEP-0060 §7.1.5). Unknown fields and values the service cannot hold
// never do.
func (c *nodeConfig) meets(field string, values []string, limit int) bool {
	want := *c
	if err := want.set(field, values, limit); err != nil {
		return false
	}
	if field == fMaxItems {
		return want.effectiveMax(limit) == c.effectiveMax(limit)
	}
	return slices.Equal(want.get(field), c.get(field))
}

// formFields describes the configuration form (XEP-0060 §8.2).
func (c *nodeConfig) formFields() []fieldDef {
	def := func(name, typ, label string, options ...string) fieldDef {
		return fieldDef{name: name, typ: typ, label: label, values: c.get(name), options: options}
	}
	return []fieldDef{
		def(fTitle, "text-single", "A friendly name for the node"),
		def(fType, "text-single", "The type of node data, usually the namespace of the payload"),
		def(fAccessModel, "list-single", "Who may retrieve items", AccessOpen, AccessPresence, AccessRoster, AccessWhitelist),
		def(fRosterGroups, "list-multi", "Roster groups allowed to retrieve items (access model roster)"),
		def(fMaxItems, "text-single", "Most items kept (a number or max)"),
		def(fPersistItems, "boolean", "Keep items in storage"),
		def(fSendLast, "list-single", "When to send the last published item", SendLastNever, SendLastOnSub, SendLastOnSubAndPre),
		def(fDeliverNotif, "boolean", "Deliver event notifications"),
		def(fDeliverPayl, "boolean", "Deliver payloads with event notifications"),
		def(fNotifyRetract, "boolean", "Notify when items are retracted"),
		def(fNotifyDelete, "boolean", "Notify when the node is deleted"),
		def(fPublishModel, "list-single", "Who may publish", "publishers"),
	}
}
