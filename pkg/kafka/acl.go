package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Admin is the principal of the operator: the broker's super user, which
// the CLI's provisioning (init, topic and group resets) connects as.
const Admin = "admin"

// Resources an ACL grants on, named as Kafka names them.
const (
	ResourceTopic           = "TOPIC"
	ResourceGroup           = "GROUP"
	ResourceTransactionalID = "TRANSACTIONAL_ID"
	ResourceCluster         = "CLUSTER"
)

// Operations an ACL allows, named as Kafka names them. Kafka implies
// DESCRIBE from READ and WRITE.
const (
	OpRead            = "READ"
	OpWrite           = "WRITE"
	OpCreate          = "CREATE"
	OpDescribe        = "DESCRIBE"
	OpDescribeConfigs = "DESCRIBE_CONFIGS"
)

// clusterName is the name of the one cluster resource.
const clusterName = "kafka-cluster"

// ACL allows one operation on the resources whose names start with Name
// (Prefixed) or are Name. It is neutral: Kmsg converts it for the broker
// at hand (kfake or a real one through GrantACLs).
type ACL struct {
	Resource  string
	Name      string
	Prefixed  bool
	Operation string
}

func (a ACL) String() string {
	pattern := "LITERAL"
	if a.Prefixed {
		pattern = "PREFIXED"
	}
	return fmt.Sprintf("%s on %s %s %q", a.Operation, pattern, a.Resource, a.Name)
}

// Kmsg returns a's resource type, pattern and operation in the protocol's
// terms.
func (a ACL) Kmsg() (kmsg.ACLResourceType, kmsg.ACLResourcePatternType, kmsg.ACLOperation, error) {
	rt, err1 := kmsg.ParseACLResourceType(a.Resource)
	op, err2 := kmsg.ParseACLOperation(a.Operation)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, 0, fmt.Errorf("acl %s: %w", a, err)
	}
	pattern := kmsg.ACLResourcePatternTypeLiteral
	if a.Prefixed {
		pattern = kmsg.ACLResourcePatternTypePrefixed
	}
	return rt, pattern, op, nil
}

// Services are the principals of the pipeline, one per service, each
// named after its service.
func Services() []string {
	return []string{"extractor", "cleaner", "loader", "scorer", "ecometer", "lake"}
}

// The principals of the tools beside the pipeline, which a deployment
// (docker-compose.yml) runs: the schema registry, keeping its schemas in
// its own topic, and the Kafka UI, which reads and changes nothing.
const (
	Registry = "registry"
	UI       = "ui"
)

// Principals are every principal but the admin: the services' and the
// tools'.
func Principals() []string { return append(Services(), Registry, UI) }

// ACLs returns what service may do, nil for a name that is not one of
// Principals. Every resource is a prefix of the pipeline's names, never a
// dataset: a service serves any dataset its configuration names.
//
// Each service creates the topics it uses when they are missing
// (EnsureTopics at start, a stage its input too), so it may CREATE under
// the prefixes it reads or writes, and nowhere else. Every service
// publishes and creates eco.samples. A stage (pkg/stage) consumes in the
// group datamill-<stage>-<dataset> with the transactional id
// datamill-<stage>-<dataset>-<instance>, and keeps its stops in
// _control.<stage>.<dataset>.
func ACLs(service string) []ACL {
	topic := func(prefix string, ops ...string) []ACL {
		var out []ACL
		for _, op := range ops {
			out = append(out, ACL{Resource: ResourceTopic, Name: prefix, Prefixed: true, Operation: op})
		}
		return out
	}
	eco := []ACL{
		{Resource: ResourceTopic, Name: EcoSamples, Operation: OpWrite},
		{Resource: ResourceTopic, Name: EcoSamples, Operation: OpCreate},
	}
	group := func(prefix string) ACL {
		return ACL{Resource: ResourceGroup, Name: prefix, Prefixed: true, Operation: OpRead}
	}
	txn := func(prefix string) ACL {
		return ACL{Resource: ResourceTransactionalID, Name: prefix, Prefixed: true, Operation: OpWrite}
	}
	// stage is a pkg/stage runner reading from and writing to a step.
	stage := func(name, from, to string) []ACL {
		return slices.Concat(
			topic(from+".", OpRead, OpCreate),
			topic(to+".", OpWrite, OpCreate),
			topic(DLQ+".", OpWrite, OpCreate),
			topic("_control."+name+".", OpRead, OpWrite, OpCreate),
			[]ACL{group("datamill-" + name + "-"), txn("datamill-" + name + "-")},
			eco,
		)
	}
	switch service {
	case "extractor":
		// It reads its topics' max.message.bytes (DESCRIBE_CONFIGS) and
		// keeps its sources' checkpoints in _state.extractor.*.
		return slices.Concat(
			topic(Raw+".", OpWrite, OpCreate, OpDescribeConfigs),
			topic(DLQ+".", OpWrite, OpCreate, OpDescribeConfigs),
			topic(StateTopic("extractor", ""), OpRead, OpWrite, OpCreate),
			[]ACL{txn("datamill-extractor-")},
			eco,
		)
	case "cleaner":
		// Its dedupe state is _state.cleaner.<dataset>.
		return slices.Concat(stage("cleaner", Raw, Clean), topic(StateTopic("cleaner", ""), OpRead, OpWrite, OpCreate))
	case "loader":
		return stage("loader", Clean, Persisted)
	case "scorer":
		return stage("scorer", Persisted, Scored)
	case "ecometer":
		// It reads every service's samples and, to report what Kafka
		// stores, the brokers' log directories (DESCRIBE on the cluster).
		return slices.Concat(
			[]ACL{{Resource: ResourceTopic, Name: EcoSamples, Operation: OpRead}},
			eco,
			[]ACL{
				{Resource: ResourceGroup, Name: "datamill-ecometer", Operation: OpRead},
				{Resource: ResourceCluster, Name: clusterName, Operation: OpDescribe},
			},
		)
	case "lake":
		// It copies raw.<dataset> in the group datamill-lake-<dataset>,
		// creating the topic when it is missing.
		return slices.Concat(topic(Raw+".", OpRead, OpCreate), []ACL{group("datamill-lake-")}, eco)
	case Registry:
		// Confluent's registry keeps its schemas in _schemas, which it
		// creates and checks (its cleanup policy), and elects its leader
		// in the group schema-registry.
		return []ACL{
			{Resource: ResourceTopic, Name: "_schemas", Operation: OpRead},
			{Resource: ResourceTopic, Name: "_schemas", Operation: OpWrite},
			{Resource: ResourceTopic, Name: "_schemas", Operation: OpCreate},
			{Resource: ResourceTopic, Name: "_schemas", Operation: OpDescribeConfigs},
			group("schema-registry"),
		}
	case UI:
		// It lists and reads every topic and describes the groups and
		// the cluster: no write, no group it could join, no offset it
		// could move.
		return []ACL{
			{Resource: ResourceTopic, Name: "*", Operation: OpRead},
			{Resource: ResourceTopic, Name: "*", Operation: OpDescribeConfigs},
			{Resource: ResourceGroup, Name: "*", Operation: OpDescribe},
			{Resource: ResourceCluster, Name: clusterName, Operation: OpDescribe},
			{Resource: ResourceCluster, Name: clusterName, Operation: OpDescribeConfigs},
		}
	}
	return nil
}

// Principal is the name Kafka's authorizer knows user as.
func Principal(user string) string { return "User:" + user }

// GrantACLs creates, through a client connected as a super user, the
// ACLs of service on a real broker. Creating an ACL that exists already
// is not an error, so it can run at every start.
func GrantACLs(ctx context.Context, admin *kgo.Client, service string) error {
	acls := ACLs(service)
	if acls == nil {
		return fmt.Errorf("grant acls: %q is not a datamill principal", service)
	}
	req := kmsg.NewPtrCreateACLsRequest()
	for _, a := range acls {
		rt, pattern, op, err := a.Kmsg()
		if err != nil {
			return err
		}
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = rt, a.Name, pattern
		c.Principal, c.Host, c.Operation = Principal(service), "*", op
		c.PermissionType = kmsg.ACLPermissionTypeAllow
		req.Creations = append(req.Creations, c)
	}
	resp, err := req.RequestWith(ctx, admin)
	if err != nil {
		return fmt.Errorf("grant acls of %s: %w", service, err)
	}
	var errs []error
	for i, r := range resp.Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil && i < len(acls) {
			errs = append(errs, fmt.Errorf("grant %s to %s: %w", acls[i], service, err))
		}
	}
	return errors.Join(errs...)
}

// SCRAMIterations is the iteration count of the SCRAM credentials datamill
// creates: the least Kafka accepts, and the one kfake uses.
const SCRAMIterations = 4096

// SetSCRAMPassword creates user's SCRAM-SHA-512 credential with password,
// or replaces it, through a client connected as a super user.
func SetSCRAMPassword(ctx context.Context, admin *kgo.Client, user, password string) error {
	res, err := kadm.NewClient(admin).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{
		User: user, Mechanism: kadm.ScramSha512, Iterations: SCRAMIterations, Password: password,
	}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return fmt.Errorf("set the SCRAM-SHA-512 password of %s: %w", user, err)
	}
	return nil
}
