package storage

// PubSub stores XEP-0060 nodes and items for PEP (XEP-0163).
// Its methods are defined with the module that uses it.
type PubSub interface{}
