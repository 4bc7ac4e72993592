// Command benthos is the Benthos v4.27.0 engine (the MIT-licensed
// predecessor of Redpanda Connect) with only the components the peer
// benchmark's config uses: the franz-go Kafka input and output, the
// schema registry decoder, the SQL outputs with the PostgreSQL driver, and
// the pure processors (Bloblang, switch, branch). `make bench-peers` builds
// it with GOWORK=off into .cache/benthos and runs users.yaml beside it.
package main

import (
	"context"

	_ "github.com/benthosdev/benthos/v4/public/components/confluent"
	_ "github.com/benthosdev/benthos/v4/public/components/io"
	_ "github.com/benthosdev/benthos/v4/public/components/kafka"
	_ "github.com/benthosdev/benthos/v4/public/components/pure"
	_ "github.com/benthosdev/benthos/v4/public/components/sql/base"
	"github.com/benthosdev/benthos/v4/public/service"
	_ "github.com/lib/pq"
)

func main() {
	service.RunCLI(context.Background())
}
