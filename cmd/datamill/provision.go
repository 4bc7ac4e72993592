package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/retry"
	ecometer "github.com/datamill/datamill/services/ecometer/migrations"
	loader "github.com/datamill/datamill/services/loader/migrations"
)

// provisioning is what `datamill init` reads from the environment.
type provisioning struct {
	Kafka    kafka.Config
	Postgres pg.Config
	// Service holds DATASETS, with the services' default.
	Service config.Service
	// PrincipalsDir holds a password file per Kafka principal
	// (kafka_user_<principal>_password, as `datamill secrets` makes them):
	// init, connected as the admin, then creates each principal's SCRAM
	// user and ACLs.
	PrincipalsDir string `env:"KAFKA_PRINCIPALS_DIR" envDefault:""`
}

// initCommand prepares a deployment before its services start: the pipeline
// topics of every dataset with KAFKA_TOPIC_PARTITIONS partitions and the
// database migrations. The services do both themselves as well, so init is
// idempotent and only makes the first start orderly (and lets an operator
// choose the partition count before any service creates a topic).
func initCommand(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("init", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: datamill init\n\nCreates the pipeline topics of DATASETS (the services' default when unset) with\nKAFKA_TOPIC_PARTITIONS partitions (default 3) on KAFKA_BROKERS and applies the\nservices' migrations to DATABASE_URL. Existing topics and applied migrations\nare left as they are. The KAFKA_* and DATABASE_* variables are the services'.\n\nWith KAFKA_PRINCIPALS_DIR, a directory of files kafka_user_<principal>_password\n(`datamill secrets` makes them), it first creates, connected as the admin,\nthe SCRAM-SHA-512 user and the ACLs of each principal: "+strings.Join(kafka.Principals(), ", ")+".")
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if flags.NArg() > 0 {
		flags.Usage()
		return errUsage
	}
	cfg, err := config.Parse[provisioning](environ)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if cfg.PrincipalsDir != "" {
		principals, err := provisionPrincipals(ctx, cfg.Kafka, cfg.PrincipalsDir)
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		fmt.Fprintf(stdout, "kafka principals (SCRAM-SHA-512 users and ACLs): %s\n", strings.Join(principals, " "))
	}
	topics, err := createTopics(ctx, cfg.Kafka, cfg.Service.Datasets)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Fprintf(stdout, "topics (%d partitions): %s\n", cfg.Kafka.Partitions, strings.Join(topics, " "))
	pool, err := pg.Open(ctx, cfg.Postgres)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	defer pool.Close()
	for _, m := range []struct {
		component string
		fs        fs.FS
	}{{"loader", loader.FS}, {"ecometer", ecometer.FS}} {
		n, err := pg.Migrate(ctx, pool, m.component, m.fs)
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		fmt.Fprintf(stdout, "migrations of %s: %d applied\n", m.component, n)
	}
	return nil
}

// provisionPrincipals sets, through cfg's client (the admin's), the SCRAM
// password of each of kafka.Principals from its file in dir and grants it
// its ACLs, and names them. Setting a password again or granting an ACL
// that exists changes nothing, so it runs at every start; a changed file
// rotates that password.
func provisionPrincipals(ctx context.Context, cfg kafka.Config, dir string) ([]string, error) {
	passwords := map[string]string{}
	var errs []error
	for _, p := range kafka.Principals() {
		file := filepath.Join(dir, kafkaPasswordFile(p))
		data, err := os.ReadFile(file) // #nosec G304 -- a file of the directory the operator names
		pw := strings.TrimRight(string(data), "\r\n")
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("password of kafka principal %s: %w", p, err))
		case pw == "":
			errs = append(errs, fmt.Errorf("password of kafka principal %s: %s is empty", p, file))
		}
		passwords[p] = pw
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cl, err := kafka.NewClient(cfg, zap.NewNop())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for _, p := range kafka.Principals() {
		if err := kafka.SetSCRAMPassword(ctx, cl, p, passwords[p]); err != nil {
			return nil, err
		}
		if err := kafka.GrantACLs(ctx, cl, p); err != nil {
			return nil, err
		}
	}
	return kafka.Principals(), nil
}

// createTopics ensures the pipeline topics of datasets and names them.
func createTopics(ctx context.Context, cfg kafka.Config, datasets []string) ([]string, error) {
	cl, err := kafka.NewClient(cfg, zap.NewNop())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	topics := kafka.PipelineTopics(datasets...)
	return topics, kafka.EnsureTopics(ctx, cl, cfg, topics...)
}

// resetPipeline deletes the pipeline topics of datasets, every stage's
// state topics and datamill's consumer groups from the broker, and waits
// until they are gone: for runs that must start from nothing on a broker
// that outlives them (tests, chaos). The pipeline topics of other datasets
// stay. Never point it at a broker with data to keep.
func resetPipeline(ctx context.Context, cfg kafka.Config, datasets ...string) error {
	cl, err := kafka.NewClient(cfg, zap.NewNop())
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	pipeline := kafka.PipelineTopics(datasets...)
	for {
		listed, err := adm.ListTopics(ctx)
		if err != nil {
			return fmt.Errorf("list topics: %w", err)
		}
		var doomed []string
		for _, topic := range listed.Names() {
			if slices.Contains(pipeline, topic) || strings.HasPrefix(topic, "_state.") {
				doomed = append(doomed, topic)
			}
		}
		if len(doomed) == 0 {
			break
		}
		// Deleting a topic already being deleted is harmless; the list
		// shows it until the broker is done.
		if _, err := adm.DeleteTopics(ctx, doomed...); err != nil {
			return fmt.Errorf("delete topics %v: %w", doomed, err)
		}
		if !retry.Sleep(ctx, 200*time.Millisecond) {
			return fmt.Errorf("topics %v still exist: %w", doomed, ctx.Err())
		}
	}
	for {
		listed, err := adm.ListGroups(ctx)
		if err != nil {
			return fmt.Errorf("list groups: %w", err)
		}
		var doomed []string
		for _, g := range listed.Groups() {
			if strings.HasPrefix(g, "datamill-") {
				doomed = append(doomed, g)
			}
		}
		if len(doomed) == 0 {
			return nil
		}
		// A group whose members have not left refuses: the members of a
		// killed process stay until their session times out, static
		// members (the stages') do not leave at all. Remove them, then
		// try again.
		if err := evict(ctx, adm, cl, doomed); err != nil {
			return err
		}
		if _, err := adm.DeleteGroups(ctx, doomed...); err != nil {
			return fmt.Errorf("delete groups %v: %w", doomed, err)
		}
		if !retry.Sleep(ctx, 200*time.Millisecond) {
			return fmt.Errorf("groups %v still exist: %w", doomed, ctx.Err())
		}
	}
}

// evict removes every member of groups, as an operator's leave-group
// command does.
func evict(ctx context.Context, adm *kadm.Client, cl *kgo.Client, groups []string) error {
	described, err := adm.DescribeGroups(ctx, groups...)
	if err != nil {
		return fmt.Errorf("describe groups %v: %w", groups, err)
	}
	for _, g := range described.Sorted() {
		if len(g.Members) == 0 {
			continue
		}
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group = g.Group
		for _, m := range g.Members {
			member := kmsg.NewLeaveGroupRequestMember()
			member.MemberID, member.InstanceID = m.MemberID, m.InstanceID
			req.Members = append(req.Members, member)
		}
		// Members that left meanwhile are errors of the response, not of
		// the request: the next try sees what is left.
		if _, err := req.RequestWith(ctx, cl); err != nil {
			return fmt.Errorf("remove the members of %s: %w", g.Group, err)
		}
	}
	return nil
}
