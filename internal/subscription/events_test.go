package subscription_test

import (
	"context"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// waitEvent waits until the installer has recorded, as an events.k8s.io
// Event regarding Subscription ns/name, an event of type and reason whose
// note contains part, and returns its note.
func waitEvent(t *testing.T, c client.Client, ns, name, typ, reason, part string) string {
	t.Helper()
	var seen []string
	var note string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var list eventsv1.EventList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		seen = seen[:0]
		for _, e := range list.Items {
			if e.Regarding.Kind != "Subscription" || e.Regarding.Name != name {
				continue
			}
			seen = append(seen, e.Type+" "+e.Reason+": "+e.Note)
			if e.Type == typ && e.Reason == reason && strings.Contains(e.Note, part) {
				note = e.Note
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no %s event %s containing %q for Subscription %s/%s; events:\n%s", typ, reason, part, ns, name, strings.Join(seen, "\n"))
	}
	return note
}
