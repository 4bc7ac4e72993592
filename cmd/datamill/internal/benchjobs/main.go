// Command benchjobs writes generated job offers as the cleaned jobs table
// would hold them, as a CSV export of that table (PostgreSQL's csv header
// form, the locations a text[]), for training and checking the jobs
// salary model while the cleaner's parsers are being written: it is
// generated clean data, not cleaned scraped data.
//
// Each offer of gen.NewJobs (no dirt) is one row: title_norm is its title
// lower-cased without what it has in parentheses (gender markers,
// cities) nor a tail after " - " or ", ", spaces collapsed; seniority
// and job_family are the generator's hidden ones; locations are the
// country and region codes of its location; tags are the technologies its
// description lists; salary_annual is its hidden annual salary in euros
// when its salary text states one (empty when the text is empty or
// "competitive", as arbeitnow's always are), and salary_stated says so.
//
//	go run ./cmd/datamill/internal/benchjobs --offers 20000 --seed 1 --out jobs.csv
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchjobs:", err)
		os.Exit(1)
	}
}

// columns are the jobs table's columns the rows fill.
var columns = []string{"id", "source_name", "title", "title_norm", "seniority", "job_family", "locations", "tags", "salary_annual", "salary_stated"}

var (
	parenthesised = regexp.MustCompile(`\s*\([^)]*\)`)
	spaces        = regexp.MustCompile(`\s+`)
	techs         = regexp.MustCompile(`<li>([^<]*)</li>`)
)

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("benchjobs", flag.ContinueOnError)
	offers := fs.Int("offers", 20000, "distinct offers (copies on a second source add rows)")
	seed := fs.Uint64("seed", 1, "seed of the generator")
	out := fs.String("out", "", "the CSV file (default: standard output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	g := gen.NewJobs(gen.JobsOptions{Offers: *offers, Seed: *seed})
	if *out == "" {
		return write(stdout, g)
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	return errors.Join(write(f, g), f.Close())
}

// write writes every offer of g as a row of the jobs table.
func write(w io.Writer, g *gen.JobsGenerator) error {
	at := func(name string) int { return slices.Index(gen.JobColumns, name) }
	cw := csv.NewWriter(w)
	_ = cw.Write(columns)
	for {
		j, ok := g.Next()
		if !ok {
			break
		}
		value := func(name string) string {
			if v := j.Values[at(name)]; v != nil {
				return *v
			}
			return ""
		}
		title := value("title")
		norm := parenthesised.ReplaceAllString(title, "")
		for _, tail := range []string{" - ", ", "} {
			norm, _, _ = strings.Cut(norm, tail)
		}
		norm = strings.ToLower(strings.TrimSpace(spaces.ReplaceAllString(norm, " ")))
		var codes []string
		for _, l := range gen.Locations {
			if l.Text == value("location") {
				codes = strings.Split(l.Codes, ",")
			}
		}
		if codes == nil {
			return fmt.Errorf("offer %s: location %q is none of gen.Locations", value("id"), value("location"))
		}
		var tags string
		if m := techs.FindStringSubmatch(value("description")); m != nil {
			tags = m[1]
		}
		salary, stated := "", j.SalaryFormat != gen.SalaryEmpty && j.SalaryFormat != gen.SalaryCompetitive
		if stated {
			salary = strconv.FormatFloat(j.Salary, 'f', -1, 64)
		}
		_ = cw.Write([]string{
			value("id"), value("source_name"), title, norm, j.Seniority, j.Family,
			"{" + strings.Join(codes, ",") + "}", tags, salary, strconv.FormatBool(stated),
		})
	}
	cw.Flush()
	return cw.Error()
}
