package hubspot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dsar-project/dsar/connectors"
)

// EngagementTypes are the engagement (activity) object types an export
// can write, as the CRM v3 object APIs name them.
var EngagementTypes = []string{"emails", "notes", "calls", "meetings", "tasks"}

// engagementProperties are the properties read of each engagement type:
// those HubSpot's engagement guides (Activities: emails, notes, calls,
// meetings, tasks) list for the object, the ones that hold what was said,
// written or planned, when, by whom and to whom. The objects' own defaults
// (hs_createdate, hs_lastmodifieddate, hs_object_id) carry none of it.
var engagementProperties = map[string][]string{
	"emails": {"hs_timestamp", "hubspot_owner_id", "hs_email_direction", "hs_email_status", "hs_email_subject",
		"hs_email_text", "hs_email_html", "hs_email_headers", "hs_attachment_ids",
		"hs_email_from_email", "hs_email_from_firstname", "hs_email_from_lastname",
		"hs_email_to_email", "hs_email_to_firstname", "hs_email_to_lastname", "hs_email_cc_email", "hs_email_bcc_email"},
	"notes": {"hs_timestamp", "hubspot_owner_id", "hs_note_body", "hs_attachment_ids"},
	"calls": {"hs_timestamp", "hubspot_owner_id", "hs_call_title", "hs_call_body", "hs_call_direction",
		"hs_call_disposition", "hs_call_duration", "hs_call_from_number", "hs_call_to_number",
		"hs_call_recording_url", "hs_call_status", "hs_attachment_ids"},
	"meetings": {"hs_timestamp", "hubspot_owner_id", "hs_meeting_title", "hs_meeting_body", "hs_internal_meeting_notes",
		"hs_meeting_external_url", "hs_meeting_location", "hs_meeting_start_time", "hs_meeting_end_time",
		"hs_meeting_outcome", "hs_attachment_ids"},
	"tasks": {"hs_timestamp", "hubspot_owner_id", "hs_task_subject", "hs_task_body", "hs_task_status",
		"hs_task_priority", "hs_task_type"},
}

// Bounds of an engagement export.
const (
	// maxEngagements is the most engagements of one type exported per
	// contact; beyond it the export says it was capped.
	maxEngagements = 5000
	// batchRead is the most records of a batch read (its documented most).
	batchRead = 100
	// emailBatch is the batch size of emails, whose bodies (text, HTML
	// and headers) are large: 10 of them stay well under maxBody.
	emailBatch = 10
)

// engagementColl is the collection of engagements of typ.
func engagementColl(typ string) string { return "engagements/" + typ }

// associatedIDs returns the ids of typ associated with ct, each once, the
// first page from ct's read and the next read with their after cursors,
// until limit ids (0: no limit); capped says more were left.
func (c *Connector) associatedIDs(ctx context.Context, ct *contact, typ string, limit int) (ids []string, capped bool, err error) {
	page := ct.Associations[typ]
	seen := map[string]bool{}
	cursors := map[string]bool{}
	for {
		for _, r := range page.Results {
			if seen[r.ID] { // one id per association label
				continue
			}
			if limit > 0 && len(ids) >= limit {
				return ids, true, nil
			}
			seen[r.ID] = true
			ids = append(ids, r.ID)
		}
		if page.Paging == nil || page.Paging.Next == nil || page.Paging.Next.After == "" {
			return ids, false, nil
		}
		after := page.Paging.Next.After
		if cursors[after] { // it would read the same pages forever
			return nil, false, connectors.Permanent(fmt.Errorf("hubspot %s: read associations: HubSpot gave an after cursor of %s twice", c.name, typ))
		}
		cursors[after] = true
		q := url.Values{"after": {after}, "limit": {strconv.Itoa(assocPage)}}
		page = assocPageDoc{}
		path := "/crm/v3/objects/contacts/" + url.PathEscape(ct.ID) + "/associations/" + url.PathEscape(typ) + "?" + q.Encode()
		if err := c.call(ctx, http.MethodGet, "read associations", path, nil, &page); err != nil {
			return nil, false, err
		}
	}
}

// crmRecord is one CRM record (an engagement, a contact) as a batch read
// answers it.
type crmRecord struct {
	ID         string             `json:"id"`
	Properties map[string]*string `json:"properties"`
	CreatedAt  string             `json:"createdAt,omitempty"`
	UpdatedAt  string             `json:"updatedAt,omitempty"`
	Archived   bool               `json:"archived"`
}

// exportEngagements writes the engagements of typ associated with each of
// cts to out, a batch at a time (POST /crm/v3/objects/{typ}/batch/read),
// and returns how many it wrote and whether a contact had more than
// maxEngagements of them (the rest were not exported).
func (c *Connector) exportEngagements(ctx context.Context, cts []*contact, typ string, out connectors.RecordWriter) (int64, bool, error) {
	var n int64
	capped := false
	size := batchRead
	if typ == "emails" {
		size = emailBatch
	}
	for _, ct := range cts {
		ids, more, err := c.associatedIDs(ctx, ct, typ, maxEngagements)
		if err != nil {
			return 0, false, err
		}
		if more {
			capped = true
			c.logger().WarnContext(ctx, "hubspot engagements capped", "type", typ, "max", maxEngagements)
		}
		for _, id := range ids {
			if err := c.checkID("read "+typ, id); err != nil {
				return 0, false, err
			}
		}
		for len(ids) > 0 {
			k := min(size, len(ids))
			recs, err := c.batchRead(ctx, typ, ids[:k], engagementProperties[typ])
			if errors.Is(err, errTooLong) && k > 1 {
				size = max(k/2, 1) // bodies larger than foreseen: ask for fewer
				continue
			}
			if err != nil {
				return 0, false, err
			}
			ids = ids[k:]
			for _, r := range recs {
				doc := map[string]any{"id": r.ID, "contactId": ct.ID, "email": primaryEmail(ct), "properties": r.Properties,
					"createdAt": r.CreatedAt, "updatedAt": r.UpdatedAt, "archived": r.Archived}
				if err := out.WriteRecord(ctx, engagementColl(typ), doc); err != nil {
					return 0, false, fmt.Errorf("hubspot %s: writing the export: %w", c.name, err)
				}
				n++
			}
		}
	}
	return n, capped, nil
}

// batchRead reads the records of objectType with ids (at most batchRead)
// and the properties props. Ids HubSpot no longer holds (deleted since the
// association was read: a 207 with errors) are left out, and so is any
// record that was not asked for.
func (c *Connector) batchRead(ctx context.Context, objectType string, ids, props []string) ([]crmRecord, error) {
	inputs := make([]map[string]string, len(ids))
	for i, id := range ids {
		inputs[i] = map[string]string{"id": id}
	}
	body := map[string]any{"properties": props, "propertiesWithHistory": []string{}, "inputs": inputs}
	var ans struct {
		Status  string      `json:"status"`
		Results []crmRecord `json:"results"`
	}
	// A 404 is not read as "none held" (HubSpot answers 207 with errors
	// for ids it no longer holds): it is returned, and retried.
	if err := c.call(ctx, http.MethodPost, "batch read "+objectType, "/crm/v3/objects/"+url.PathEscape(objectType)+"/batch/read", body, &ans); err != nil {
		return nil, err
	}
	if len(ans.Results) > len(ids) {
		return nil, connectors.Permanent(fmt.Errorf("hubspot %s: batch read %s: HubSpot answered %d records for %d ids", c.name, objectType, len(ans.Results), len(ids)))
	}
	asked := map[string]bool{}
	for _, id := range ids {
		asked[id] = true
	}
	out := ans.Results[:0]
	for _, r := range ans.Results {
		if asked[r.ID] { // never a record that was not asked for
			asked[r.ID] = false
			out = append(out, r)
		}
	}
	return out, nil
}
