// Package users holds the Go types of the users dataset's records, generated
// from the schemas under schemas/avro/users: Raw (as extracted), Clean
// (typed), Persisted (as loaded, with the loader's action) and Scored (the
// model's prediction). Do not edit users_gen.go; run go generate in
// schemas/.
package users
