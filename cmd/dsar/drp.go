package main

import (
	"fmt"
	"os"

	dsarapp "github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/drp"
)

// drpOptions returns the Data Rights Protocol's settings: off (the zero
// value) without DSAR_DRP_BUSINESS_ID; else the agents of
// DSAR_DRP_AGENTS_FILE, and tokens signed under keys derived from the
// blind index's (so they rotate with it).
func drpOptions(cfg config.Config, index *dsr.BlindIndex) (dsarapp.DRPOptions, error) {
	if cfg.DRPBusinessID == "" {
		return dsarapp.DRPOptions{}, nil
	}
	data, err := os.ReadFile(cfg.DRPAgentsFile)
	if err != nil {
		return dsarapp.DRPOptions{}, fmt.Errorf("DSAR_DRP_AGENTS_FILE: %w", err)
	}
	agents, err := drp.ParseDirectory(data)
	if err != nil {
		return dsarapp.DRPOptions{}, fmt.Errorf("DSAR_DRP_AGENTS_FILE %s: %w", cfg.DRPAgentsFile, err)
	}
	var keys [][]byte
	for _, k := range index.Keys() {
		keys = append(keys, dsr.Derive(k, "dsar drp tokens v1"))
	}
	return dsarapp.DRPOptions{BusinessID: cfg.DRPBusinessID, Agents: agents, Tokens: drp.NewTokens(keys...),
		PortalURL: cfg.PortalURL, AllowInternalCallbacks: cfg.AllowInternalCallbacks}, nil
}

// trustedAgents are the agents the workers send statuses to: never nil,
// so with the protocol off no agent is sent anything.
func trustedAgents(o dsarapp.DRPOptions) drp.Directory {
	if o.Agents == nil {
		return drp.Directory{}
	}
	return o.Agents
}
