package storage

// PushRegistrations stores XEP-0357 push registrations.
// Its methods are defined with the module that uses it.
type PushRegistrations interface{}
