package storage

// Private stores XEP-0049 private XML storage.
// Its methods are defined with the module that uses it.
type Private interface{}
