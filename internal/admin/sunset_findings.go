package admin

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
	"github.com/fleetgate/fleetgate/internal/usage/usagestore"
)

// pastSunsetFinding reports deprecated versions past their sunset that are
// still called within the tenant's retire window: the sunset sweeper may
// not retire them, so someone must move their callers (nil when none).
func (s *Server) pastSunsetFinding(tx store.Tx, tenant string, now time.Time) (*Finding, error) {
	vs, err := tx.ListVersionsByState(tenant, model.StateDeprecated)
	if err != nil {
		return nil, err
	}
	set, err := s.gov.Settings(tx, tenant)
	if err != nil {
		return nil, err
	}
	var objects []string
	for _, v := range vs {
		if v.Sunset == nil || v.Sunset.After(now) {
			continue
		}
		callers, err := usagestore.Read(tx, s.usage, tenant, v.ID, now.Add(-set.RetireWindow))
		if err != nil {
			return nil, err
		}
		if len(callers) == 0 {
			continue
		}
		var who []string
		for i, c := range callers {
			if i == 3 {
				who = append(who, fmt.Sprintf("%d more", len(callers)-3))
				break
			}
			name := c.Consumer
			if c.Model != "" {
				name += " [" + c.Model + " " + c.Firmware + "]"
			}
			who = append(who, fmt.Sprintf("%s (%d calls, last %s)", name, c.Count, c.LastSeen.Format(time.RFC3339)))
		}
		objects = append(objects, fmt.Sprintf("version:%s/%s (sunset %s) still called by %s", v.APIName, v.Label,
			v.Sunset.Format("2006-01-02"), strings.Join(who, ", ")))
	}
	if len(objects) == 0 {
		return nil, nil
	}
	sort.Strings(objects)
	return &Finding{ID: "past-sunset-in-use", Severity: "high",
		Title:   fmt.Sprintf("%d version(s) past their sunset are still called, so they cannot be retired", len(objects)),
		Objects: objects, Fix: "move the callers to the successor version, or retire with --force and a reason"}, nil
}
