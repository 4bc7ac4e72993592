module github.com/datamill/datamill/schemas

go 1.26.8

require (
	github.com/google/go-cmp v0.6.0
	github.com/hamba/avro/v2 v2.31.0
	go.yaml.in/yaml/v3 v3.0.5
	golang.org/x/tools v0.40.0
)

require (
	github.com/ettle/strcase v0.2.0 // indirect
	github.com/go-viper/mapstructure/v2 v2.4.0 // indirect
	github.com/json-iterator/go v1.1.12 // indirect
	github.com/modern-go/concurrent v0.0.0-20180306012644-bacd9c7ef1dd // indirect
	github.com/modern-go/reflect2 v1.0.2 // indirect
	golang.org/x/mod v0.31.0 // indirect
	golang.org/x/sync v0.19.0 // indirect
)
