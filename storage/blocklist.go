package storage

// Blocklist stores XEP-0191 blocking lists.
// Its methods are defined with the module that uses it.
type Blocklist interface{}
