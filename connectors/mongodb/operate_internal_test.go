package mongodb

import "testing"

// TestPrivilegesAllow: a privilege grants an action on db.coll when its
// resource names them, or leaves either empty (any), or is anyResource,
// and its actions hold the action or anyAction.
func TestPrivilegesAllow(t *testing.T) {
	t.Parallel()
	res := func(db, coll string, actions ...string) privilege {
		var p privilege
		p.Resource.DB, p.Resource.Collection, p.Actions = &db, &coll, actions
		return p
	}
	cluster := privilege{Actions: []string{"find", "update", "remove"}} // {cluster: true}: no db or collection
	anyRes := privilege{Actions: []string{"anyAction"}}
	anyRes.Resource.AnyResource = true
	tests := []struct {
		name   string
		privs  privileges
		action string
		ok     bool
	}{
		{"exact", privileges{list: []privilege{res("shop", "orders", "find")}}, "find", true},
		{"other action", privileges{list: []privilege{res("shop", "orders", "find")}}, "remove", false},
		{"other collection", privileges{list: []privilege{res("shop", "carts", "remove")}}, "remove", false},
		{"other db", privileges{list: []privilege{res("crm", "orders", "remove")}}, "remove", false},
		{"every collection of the db", privileges{list: []privilege{res("shop", "", "update")}}, "update", true},
		{"the collection in every db", privileges{list: []privilege{res("", "orders", "update")}}, "update", true},
		{"anyAction", privileges{list: []privilege{res("shop", "orders", "anyAction")}}, "remove", true},
		{"anyResource", privileges{list: []privilege{anyRes}}, "remove", true},
		{"cluster resource", privileges{list: []privilege{cluster}}, "find", false},
		{"none", privileges{}, "find", false},
		{"access control off", privileges{open: true}, "remove", true},
		{"second privilege", privileges{list: []privilege{res("shop", "carts", "find"), res("shop", "orders", "find")}}, "find", true},
	}
	for _, tt := range tests {
		err := tt.privs.allow("shop", "orders", tt.action)
		if (err == nil) != tt.ok {
			t.Errorf("%s: allow = %v; want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestNeededActions(t *testing.T) {
	t.Parallel()
	del, mask, pull, set := &Strategy{Kind: StrategyDelete}, &Strategy{Kind: StrategyMask}, &Strategy{Kind: StrategyPull}, &Strategy{Kind: StrategySet}
	tests := []struct {
		name string
		col  CollectionSpec
		want string
	}{
		{"delete", CollectionSpec{Erase: del}, "find remove"},
		{"mask", CollectionSpec{Erase: mask}, "find update"},
		{"pull, opt out by delete", CollectionSpec{Erase: pull, OptOut: del}, "find update remove"},
		{"retained whole, opt out by set", CollectionSpec{Erase: del, Retain: "law", OptOut: set}, "find update"},
		{"retained whole", CollectionSpec{Erase: del, Retain: "law"}, "find"},
		{"retained masked", CollectionSpec{Erase: mask, Retain: "law"}, "find update"},
		{"delete, correct", CollectionSpec{Erase: del, Correct: map[string]string{"name": "name"}}, "find update remove"},
	}
	for _, tt := range tests {
		got := ""
		for i, a := range neededActions(tt.col) {
			if i > 0 {
				got += " "
			}
			got += a
		}
		if got != tt.want {
			t.Errorf("%s: %q; want %q", tt.name, got, tt.want)
		}
	}
}
