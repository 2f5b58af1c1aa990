package storage

// VCards stores XEP-0054 vCard-temp documents.
// Its methods are defined with the module that uses it.
type VCards interface{}
