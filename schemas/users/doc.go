// Package users holds the Go types of the users dataset's records, generated
// from its schemas: Raw (as extracted) and Clean (typed) from the files under
// schemas/avro/users, Persisted (as loaded, with the loader's action) and
// Scored (the model's prediction) from the schemas derived from Clean. Do not
// edit users_gen.go; run go generate in schemas/.
package users
