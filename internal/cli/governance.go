package cli

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// governanceSettings is the body of PUT /governance: what the tenant sets.
type governanceSettings struct {
	LintLevels    map[string]string `json:"lint_levels,omitempty" yaml:"lint_levels"`
	VersionBudget int               `json:"version_budget,omitempty" yaml:"version_budget"`
	APIBudgets    map[string]int    `json:"api_budgets,omitempty" yaml:"api_budgets"`
	RetireWindow  string            `json:"retire_window,omitempty" yaml:"retire_window"`
}

var governanceType = reflect.TypeOf(governanceSettings{})

// governanceAnswer is GET/PUT /governance.
type governanceAnswer struct {
	Tenant string `json:"tenant"`
	governanceSettings
	Effective struct {
		LintLevels    map[string]string `json:"lint_levels"`
		VersionBudget int               `json:"version_budget"`
		RetireWindow  string            `json:"retire_window"`
	} `json:"effective"`
	Rules []struct {
		ID    string `json:"id"`
		Level string `json:"level"`
	} `json:"rules"`
	UpdatedBy string `json:"updated_by"`
	UpdatedAt string `json:"updated_at"`
}

// governanceCmd shows and changes the tenant's governance settings: lint
// rule levels, version budgets and the retire window.
func (a *app) governanceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "governance", Short: "Show or change the tenant's governance settings (lint levels, version budgets, retire window)"}
	show := &cobra.Command{
		Use: "show", Short: "Show the settings and what the checks apply", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			var g governanceAnswer
			raw, err := s.call(ctx, http.MethodGet, "/governance", nil, &g)
			if err != nil {
				return err
			}
			return s.emit(raw, func() error { return printGovernance(s, &g) })
		}),
	}
	var lints, budgets []string
	var budget int
	var window string
	var reset bool
	set := &cobra.Command{
		Use:   "set [--lint rule=level]... [--version-budget N] [--api-budget api=N]... [--retire-window 30d] [--reset]",
		Short: "Change some settings, keeping the others (admin role)",
		Long: "Reads the current settings, applies the flags and writes them back. --lint rule=default and\n" +
			"--api-budget api=0 remove an override; --version-budget 0 and --retire-window 0 restore the default.",
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			next := governanceSettings{}
			if !reset {
				var cur governanceAnswer
				if _, err := s.call(ctx, http.MethodGet, "/governance", nil, &cur); err != nil {
					return err
				}
				next = cur.governanceSettings
			}
			if err := applyGovernanceFlags(s.cmd, &next, lints, budgets, budget, window); err != nil {
				return err
			}
			return putGovernance(ctx, s, next, nil)
		}),
	}
	set.Flags().StringArrayVar(&lints, "lint", nil, "rule=level (error, warn, info, off, or default to remove the override); repeatable")
	set.Flags().IntVar(&budget, "version-budget", 0, "active versions per API (0: the default)")
	set.Flags().StringArrayVar(&budgets, "api-budget", nil, "api=N budget of one API (0 removes it); repeatable")
	set.Flags().StringVar(&window, "retire-window", "", "no retirement without force while called within this window, e.g. 30d or 36h (0: the default)")
	set.Flags().BoolVar(&reset, "reset", false, "start from the defaults instead of the current settings")
	var file string
	apply := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Replace the settings with a YAML or JSON document (admin role)",
		Args:  cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			d, err := readDocFile(file, "governance", governanceType)
			if err != nil {
				return err
			}
			return putGovernance(ctx, s, d.json, d.within(""))
		}),
	}
	apply.Flags().StringVarP(&file, "file", "f", "", "settings document: lint_levels, version_budget, api_budgets, retire_window (required)")
	_ = apply.MarkFlagRequired("file")
	cmd.AddCommand(show, set, apply)
	return cmd
}

// applyGovernanceFlags changes g by the flags that were given.
func applyGovernanceFlags(cmd *cobra.Command, g *governanceSettings, lints, budgets []string, budget int, window string) error {
	for _, l := range lints {
		rule, level, ok := strings.Cut(l, "=")
		if !ok || rule == "" || level == "" {
			return fmt.Errorf("invalid --lint %q: want rule=level", l)
		}
		if g.LintLevels == nil {
			g.LintLevels = map[string]string{}
		}
		if level == "default" {
			delete(g.LintLevels, rule)
		} else {
			g.LintLevels[rule] = level
		}
	}
	for _, b := range budgets {
		api, n, ok := strings.Cut(b, "=")
		v, err := strconv.Atoi(n)
		if !ok || api == "" || err != nil || v < 0 {
			return fmt.Errorf("invalid --api-budget %q: want api=N", b)
		}
		if g.APIBudgets == nil {
			g.APIBudgets = map[string]int{}
		}
		if v == 0 {
			delete(g.APIBudgets, api)
		} else {
			g.APIBudgets[api] = v
		}
	}
	if cmd.Flags().Changed("version-budget") {
		g.VersionBudget = budget
	}
	if cmd.Flags().Changed("retire-window") {
		g.RetireWindow = window
		if window == "0" {
			g.RetireWindow = ""
		}
	}
	return nil
}

// putGovernance writes the settings and shows the result; field errors
// are located in the file when the settings came from one.
func putGovernance(ctx context.Context, s *session, body any, loc locator) error {
	var g governanceAnswer
	raw, err := s.call(ctx, http.MethodPut, "/governance", body, &g)
	if err != nil {
		if loc != nil {
			return locateProblem(err, loc)
		}
		return err
	}
	return s.emit(raw, func() error {
		fmt.Fprintf(s.stdout, "Updated the governance settings of %s.\n", g.Tenant)
		return printGovernance(s, &g)
	})
}

func printGovernance(s *session, g *governanceAnswer) error {
	budgets := "-"
	if len(g.APIBudgets) > 0 {
		var parts []string
		for api, n := range g.APIBudgets {
			parts = append(parts, fmt.Sprintf("%s=%d", api, n))
		}
		sort.Strings(parts)
		budgets = strings.Join(parts, ",")
	}
	updated := "never (defaults)"
	if g.UpdatedBy != "" {
		updated = g.UpdatedAt + " by " + g.UpdatedBy
	}
	if err := printFields(s.stdout,
		field{"Tenant", g.Tenant},
		field{"Version budget", strconv.Itoa(g.Effective.VersionBudget) + orDefault(g.VersionBudget == 0)},
		field{"API budgets", budgets},
		field{"Retire window", g.Effective.RetireWindow + orDefault(g.RetireWindow == "")},
		field{"Updated", updated},
	); err != nil {
		return err
	}
	t := newTable(s.stdout, "RULE", "LEVEL", "DEFAULT")
	for _, r := range g.Rules {
		lvl := g.Effective.LintLevels[r.ID]
		if _, set := g.LintLevels[r.ID]; set {
			lvl += " (set)"
		}
		t.row(r.ID, lvl, r.Level)
	}
	return t.flush()
}

func orDefault(isDefault bool) string {
	if isDefault {
		return " (default)"
	}
	return ""
}
