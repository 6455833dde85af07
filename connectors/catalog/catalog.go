// Package catalog lists every connector type dsar ships: the one place a new
// type is registered. A type package exports its name (Type) and a factory
// taking the shared dependencies (Factory(connectors.Deps)); add both here,
// with what the type can do (its Kind), which `dsar connectors list` shows
// without building a connector. Every type has a docs page,
// docs/connectors/<type>.md, whose example files a test loads and holds to
// that description.
package catalog

import (
	"slices"
	"sort"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/braze"
	"github.com/dsar-project/dsar/connectors/hubspot"
	"github.com/dsar-project/dsar/connectors/klaviyo"
	"github.com/dsar-project/dsar/connectors/mailchimp"
	"github.com/dsar-project/dsar/connectors/manual"
	"github.com/dsar-project/dsar/connectors/mongodb"
	"github.com/dsar-project/dsar/connectors/opendsr"
	"github.com/dsar-project/dsar/connectors/redis"
	"github.com/dsar-project/dsar/connectors/segment"
	"github.com/dsar-project/dsar/connectors/sqldb"
	"github.com/dsar-project/dsar/connectors/stripe"
	"github.com/dsar-project/dsar/connectors/webhook"
)

// Kind describes a connector type without building a connector of it.
type Kind struct {
	// Name is the type as the connectors file writes it.
	Name string
	// Summary says in a line what the type reaches.
	Summary string
	// Actions are the actions a connector of the type can be configured
	// for, sorted; which of them one connector does depends on its
	// settings (connectors.Scoped).
	Actions []connectors.Action
	// Resolves, Checks and Discovers say whether its connectors find more
	// identities of a subject (connectors.Resolver), check themselves
	// against their system (connectors.Checker, `dsar connectors test`)
	// and scan it for data the file does not cover (connectors.Discoverer,
	// `dsar discover`).
	Resolves, Checks, Discovers bool
	// ListsSegments says its connectors list the members of the
	// collections their opt-out removes people from
	// (connectors.SegmentLister), which the re-application check reads.
	ListsSegments bool
	// List is the setting of an entry that lists its collections or tables
	// ("collections", "tables"), each with a name and a match of field to
	// identity kind, the shape of the entries `dsar discover` suggests; ""
	// when the type has no such list.
	List string
	// Callbacks says its connectors take callbacks
	// (connectors.CallbackVerifier), so the API builds them too (see
	// CallbackTypes).
	Callbacks bool

	factory func(connectors.Deps) connectors.Factory
}

// kinds is every connector type.
var kinds = []Kind{
	{
		Name:     mongodb.Type,
		Summary:  "collections of a MongoDB or MongoDB-compatible database (FerretDB too)",
		Actions:  []connectors.Action{connectors.ActionCorrect, connectors.ActionErase, connectors.ActionExport, connectors.ActionOptOut},
		Resolves: true, Checks: true, Discovers: true, ListsSegments: true,
		List:    "collections",
		factory: mongodb.Factory,
	},
	{
		Name:     redis.Type,
		Summary:  "keys named after a person, and segments (sets, sorted sets), in Redis",
		Actions:  []connectors.Action{connectors.ActionErase, connectors.ActionExport, connectors.ActionOptOut},
		Resolves: true, Checks: true, ListsSegments: true,
		factory: redis.Factory,
	},
	{
		Name:     sqldb.TypePostgres,
		Summary:  "tables of a PostgreSQL database",
		Actions:  []connectors.Action{connectors.ActionErase, connectors.ActionExport, connectors.ActionOptOut},
		Resolves: true, Checks: true, Discovers: true, ListsSegments: true,
		List:    "tables",
		factory: sqldb.PostgresFactory,
	},
	{
		Name:     sqldb.TypeMySQL,
		Summary:  "tables of a MySQL or MariaDB database",
		Actions:  []connectors.Action{connectors.ActionErase, connectors.ActionExport, connectors.ActionOptOut},
		Resolves: true, Checks: true, Discovers: true, ListsSegments: true,
		List:    "tables",
		factory: sqldb.MySQLFactory,
	},
	{
		Name:    mailchimp.Type,
		Summary: "members of Mailchimp audiences (Marketing API 3.0): export, permanent deletion, unsubscribe and segment tags removed",
		Actions: []connectors.Action{connectors.ActionErase, connectors.ActionExport, connectors.ActionOptOut},
		Checks:  true, ListsSegments: true,
		factory: mailchimp.Factory,
	},
	{
		Name:    manual.Type,
		Summary: "a task for a named owner, for a system with no API: a signed link to a page where they confirm, upload or report the person absent",
		Actions: []connectors.Action{connectors.ActionErase, connectors.ActionExport, connectors.ActionOptOut},
		factory: manual.Factory,
	},
	{
		Name:    segment.Type,
		Summary: "a Twilio Segment workspace: deletion, suppression and unsuppression regulations (Public API), polled until Segment finishes them",
		Actions: []connectors.Action{connectors.ActionErase, connectors.ActionOptIn, connectors.ActionOptOut},
		Checks:  true,
		factory: segment.Factory,
	},
	{
		Name:    stripe.Type,
		Summary: "customers of a Stripe account, by email: customer, charges, invoices and cards (masked) exported; deleted, or redacted by a polled redaction job",
		Actions: []connectors.Action{connectors.ActionErase, connectors.ActionExport},
		Checks:  true,
		factory: stripe.Factory,
	},
	{
		Name:      webhook.Type,
		Summary:   "any system behind a URL: signed calls (Standard Webhooks), answered at once or by a signed callback",
		Actions:   []connectors.Action{connectors.ActionErase, connectors.ActionExport, connectors.ActionOptOut},
		Callbacks: true,
		factory:   webhook.Factory,
	},
	{
		Name:      opendsr.Type,
		Summary:   "a processor that speaks OpenDSR 2.0: access and erasure requests passed on, its signed callbacks verified against its certificate, polled when none comes",
		Actions:   []connectors.Action{connectors.ActionErase, connectors.ActionExport},
		Checks:    true,
		Callbacks: true,
		factory:   opendsr.Factory,
	},
	{
		Name:    braze.Type,
		Summary: "user profiles of a Braze workspace (REST API): exported, deleted by braze_id, unsubscribed from email and subscription groups",
		Actions: []connectors.Action{connectors.ActionErase, connectors.ActionExport, connectors.ActionOptOut},
		factory: braze.Factory,
	},
	{
		Name:    hubspot.Type,
		Summary: "contacts in HubSpot's CRM, by primary or additional email: properties, associations, engagements, lists and subscriptions; GDPR delete; opt-out of all email and of lists",
		Actions: []connectors.Action{connectors.ActionErase, connectors.ActionExport, connectors.ActionOptOut},
		Checks:  true, ListsSegments: true,
		factory: hubspot.Factory,
	},
	{
		Name:    klaviyo.Type,
		Summary: "profiles in a Klaviyo account, by email or phone: profile and events exported; data-privacy deletion, polled until gone; suppression and list unsubscribe",
		Actions: []connectors.Action{connectors.ActionErase, connectors.ActionExport, connectors.ActionOptOut},
		Checks:  true,
		factory: klaviyo.Factory,
	},
}

// Types returns every connector type, each built with d, for
// connectors.LoadFile and connectors.Parse.
func Types(d connectors.Deps) connectors.Types {
	out := make(connectors.Types, len(kinds))
	for _, k := range kinds {
		out[k.Name] = k.factory(d)
	}
	return out
}

// CallbackTypes returns the connector types whose connectors take
// callbacks (connectors.CallbackVerifier), each built with d: what the API
// loads from the connectors file (connectors.LoadFileOnly) to check the
// callbacks of POST /v1/callbacks/{job}.
func CallbackTypes(d connectors.Deps) connectors.Types {
	out := connectors.Types{}
	for _, k := range kinds {
		if k.Callbacks {
			out[k.Name] = k.factory(d)
		}
	}
	return out
}

// Names returns the name of every connector type, sorted.
func Names() []string {
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k.Name)
	}
	sort.Strings(out)
	return out
}

// Kinds returns the description of every connector type, sorted by name.
func Kinds() []Kind {
	out := slices.Clone(kinds)
	for i := range out {
		out[i].Actions = slices.Clone(out[i].Actions)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the description of the type called name.
func Lookup(name string) (Kind, bool) {
	for _, k := range Kinds() {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}
