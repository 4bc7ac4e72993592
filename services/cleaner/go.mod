module github.com/datamill/datamill/services/cleaner

go 1.26.8

require (
	github.com/datamill/datamill/pkg v0.0.0
	github.com/datamill/datamill/schemas v0.0.0
)

replace github.com/datamill/datamill/pkg => ../../pkg

replace github.com/datamill/datamill/schemas => ../../schemas
