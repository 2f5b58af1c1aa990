package storage

// Archive stores XEP-0313 message archives (MAM): owned by the mam work.
// Its methods are defined with the module that uses it.
type Archive interface{}
