package main

import (
	"math/big"
	"strconv"
	"time"

	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
	"github.com/datamill/datamill/services/loader/internal/sink"
)

// usersDataset is the users table of the seed, loaded from clean.users.
var usersDataset = &dataset[users.Clean, users.Persisted]{
	table: &sink.Table{Name: "users", Key: "id", Columns: []string{
		"id", "age", "gender", "country", "city", "email", "signup_date", "last_login",
		"account_status", "monthly_spend", "quality_flags",
	}},
	cleanSchema:     schemas.MustSchema("users/clean"),
	persistedSchema: schemas.MustSchema("users/persisted"),
	row: func(c *users.Clean) sink.Row {
		flags := c.QualityFlags
		if flags == nil {
			flags = []string{}
		}
		return sink.Row{
			Values: []any{
				c.ID, c.Age, c.Gender, c.Country, c.City, c.Email, c.SignupDate, c.LastLogin,
				c.AccountStatus, decimal(c.MonthlySpend), flags,
			},
			EventID: c.EventID, Source: c.Source, IngestedAt: c.EventTime, ContentHash: c.ContentHash,
		}
	},
	persisted: func(c users.Clean, a sink.Action, at time.Time) users.Persisted {
		return users.Persisted{Record: c, Action: users.LoadAction(a), PersistedAt: at}
	},
	key: func(c *users.Clean) []byte { return strconv.AppendInt(nil, c.ID, 10) },
}

// decimal renders a nullable decimal for PostgreSQL's numeric.
func decimal(r **big.Rat) *string {
	if r == nil || *r == nil {
		return nil
	}
	s := (*r).FloatString(2)
	return &s
}
