package kube

import (
	"context"
	"fmt"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
)

// Config is what kubectl's flags say of the cluster: --kubeconfig (else
// KUBECONFIG, else ~/.kube/config), --context and --namespace, each empty
// for the kubeconfig's own choice.
type Config struct {
	Kubeconfig, Context, Namespace string
}

// Client is the part of client-go's clientset a run uses: pods, and who the
// caller is. kubernetes.Interface (and its fake) is one; Connect makes one
// of these two groups only, which keeps the other groups' clients out of the
// binary.
type Client interface {
	CoreV1() corev1client.CoreV1Interface
	AuthenticationV1() authv1client.AuthenticationV1Interface
}

// groupClients is a Client of two API groups.
type groupClients struct {
	core *corev1client.CoreV1Client
	auth *authv1client.AuthenticationV1Client
}

func (g groupClients) CoreV1() corev1client.CoreV1Interface { return g.core }

func (g groupClients) AuthenticationV1() authv1client.AuthenticationV1Interface { return g.auth }

// Cluster is a connection to the API server Config names.
type Cluster struct {
	Client Client
	// Namespace is the namespace of the pods: Config's, else the context's,
	// else "default".
	Namespace string
	loader    clientcmd.ClientConfig
	context   string
}

// Connect loads the kubeconfig as kubectl does (the loading rules and
// overrides that k8s.io/cli-runtime's flags set, without cli-runtime's
// printers and kustomize in the binary) and makes a client; it does not
// contact the API server.
func Connect(cfg Config) (*Cluster, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = cfg.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: cfg.Context}
	overrides.Context.Namespace = cfg.Namespace
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	rest, err := loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := loader.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	var cs groupClients
	if cs.core, err = corev1client.NewForConfig(rest); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if cs.auth, err = authv1client.NewForConfig(rest); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Cluster{Client: cs, Namespace: ns, loader: loader, context: cfg.Context}, nil
}

// Describe returns the run-level orchestration record of this connection:
// the kubeconfig's context, cluster, server and user entry, and who the API
// server says the caller is (a SelfSubjectReview, which every authenticated
// user may create; left empty when the server does not answer it).
func (c *Cluster) Describe(ctx context.Context) bundle.Orchestration {
	var o bundle.Orchestration
	if raw, err := c.loader.RawConfig(); err == nil {
		o.Context = c.context
		if o.Context == "" {
			o.Context = raw.CurrentContext
		}
		if kctx := raw.Contexts[o.Context]; kctx != nil {
			o.Cluster, o.KubeconfigUser = kctx.Cluster, kctx.AuthInfo
			if cl := raw.Clusters[kctx.Cluster]; cl != nil {
				o.Server = cl.Server
			}
		}
	}
	o.User, o.Groups = WhoAmI(ctx, c.Client)
	return o
}

// WhoAmI asks the API server who the client is authenticated as.
func WhoAmI(ctx context.Context, cs Client) (user string, groups []string) {
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", nil
	}
	return r.Status.UserInfo.Username, r.Status.UserInfo.Groups
}
