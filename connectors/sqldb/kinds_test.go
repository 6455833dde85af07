package sqldb_test

import (
	"strings"
	"testing"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv/sqlenv"
)

// TestAdvertisingIDs: tables keyed by advertising and device ids are
// matched by them: a subject known by the advertising id of their phone
// (given in upper case, as iOS writes it, and normalised as intake does)
// has their device found, its device id resolved, and their events
// exported and erased, a row keeping the id in upper case as iOS wrote it
// too; another person's rows, and those of users whose phones gave the
// all-zero id of limited ad tracking, stay.
func TestAdvertisingIDs(t *testing.T) {
	const (
		adaIDFA  = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
		zeroIDFA = "00000000-0000-0000-0000-000000000000"
	)
	adID, err := dsr.Normalize(dsr.KindAdvertisingID, adaIDFA)
	if err != nil {
		t.Fatal(err)
	}
	// The all-zero id names nobody: no request can carry it, so nobody's
	// request reaches the rows of every user whose phone gave it.
	if _, err := dsr.Normalize(dsr.KindAdvertisingID, zeroIDFA); err == nil {
		t.Fatal("the all-zero advertising id was accepted")
	}
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		db := srv.NewDatabase(t)
		adType := "uuid" // PostgreSQL compares uuids whatever their case
		if srv.Kind == "mysql" {
			adType = "varchar(36)"
		}
		q := func(s string) string {
			if srv.Kind == "mysql" {
				return strings.ReplaceAll(s, "::uuid", "")
			}
			return s
		}
		db.Exec(t,
			`CREATE TABLE devices (id int PRIMARY KEY, ad_id `+adType+`, android_id varchar(64), model varchar(40))`,
			`CREATE TABLE ad_events (id int PRIMARY KEY, idfa varchar(36), android_id varchar(64), event varchar(40))`,
			q(`INSERT INTO devices VALUES
				(1, '6d92078a-8246-4ba4-ae5b-76104861e7dc'::uuid, NULL, 'iPhone'),
				(2, 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6'::uuid, 'b2c3d4e5f6071829', 'Pixel'),
				(3, '00000000-0000-0000-0000-000000000000'::uuid, 'c3d4e5f607182930', 'Pixel'),
				(4, '00000000-0000-0000-0000-000000000000'::uuid, 'd4e5f60718293041', 'iPhone'),
				(5, NULL, 'a1b2c3d4e5f60718', 'Fire TV')`),
			`INSERT INTO ad_events VALUES
				(1, '6d92078a-8246-4ba4-ae5b-76104861e7dc', NULL, 'install'),
				(2, '6D92078A-8246-4BA4-AE5B-76104861E7DC', NULL, 'purchase'),
				(3, NULL, 'a1b2c3d4e5f60718', 'open'),
				(4, 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6', NULL, 'install'),
				(5, '00000000-0000-0000-0000-000000000000', NULL, 'install'),
				(6, '00000000-0000-0000-0000-000000000000', NULL, 'open')`)
		// devices 1 and 5 are Ada's phone and TV: the ad platform linked
		// the TV by a shared row, here a second identity on ad_events.
		db.Exec(t, `UPDATE ad_events SET android_id = 'a1b2c3d4e5f60718' WHERE id = 2`)
		c := mustConnector(t, typ, db, `
connectors:
  - name: ads
    type: ${TYPE}
    dsn: ${DSN}
    tables:
      - {name: devices, match: {ad_id: advertising_id, android_id: device_id}, erase: delete}
      - {name: ad_events, match: {idfa: advertising_id, android_id: device_id}, provide: {device_id: android_id}, erase: delete}
`)
		s := connectors.Subject{Identities: []connectors.Identity{{Kind: string(dsr.KindAdvertisingID), Value: adID, Source: dsr.SourceSubject}}}
		found, err := c.(connectors.Resolver).Resolve(t.Context(), s)
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		if len(found) != 1 || found[0].Kind != "device_id" || found[0].Value != "a1b2c3d4e5f60718" {
			t.Fatalf("Resolve = %+v; want the TV's device id", found)
		}
		s.Identities = append(s.Identities, found...)
		w := &writer{}
		res, err := c.(connectors.Exporter).Export(t.Context(), s, w)
		if err != nil {
			t.Fatalf("Export: %v", err)
		}
		if got := counts(res); got["devices"] != 2 || got["ad_events"] != 3 {
			t.Errorf("Export found %v; want devices 2 (phone and TV), ad_events 3", got)
		}
		for _, r := range w.records {
			if strings.Contains(r, "00000000-0000") || strings.Contains(r, "f81d4fae") {
				t.Errorf("Export reached another person's row: %s", r)
			}
		}
		res, err = c.(connectors.Eraser).Erase(t.Context(), s)
		if err != nil {
			t.Fatalf("Erase: %v", err)
		}
		if res.Records != 5 {
			t.Errorf("Erase reported %d records; want 5", res.Records)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM devices WHERE id IN (2, 3, 4)"); n != 3 {
			t.Errorf("%d of the 3 other devices left", n)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM devices"); n != 3 {
			t.Errorf("%d devices left; want 3", n)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM ad_events WHERE id IN (4, 5, 6)"); n != 3 {
			t.Errorf("%d of the 3 other events left", n)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM ad_events"); n != 3 {
			t.Errorf("%d events left; want 3", n)
		}
	})
}
