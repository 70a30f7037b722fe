package testenv_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/internal/testenv"
)

func TestStartCreatesAndReadsConfigMap(t *testing.T) {
	env := testenv.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	want := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "testenv-probe", Namespace: metav1.NamespaceDefault},
		Data:       map[string]string{"greeting": "hello"},
	}
	if err := env.Client.Create(ctx, want); err != nil {
		t.Fatalf("creating ConfigMap: %v", err)
	}

	var got corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(want), &got); err != nil {
		t.Fatalf("reading ConfigMap: %v", err)
	}
	if got.Data["greeting"] != "hello" {
		t.Fatalf("ConfigMap data = %v, want greeting=hello", got.Data)
	}
	if got.UID == "" {
		t.Fatal("ConfigMap has no UID: it was not stored by the API server")
	}

	if err := env.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := env.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}
