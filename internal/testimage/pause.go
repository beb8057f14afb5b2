package testimage

import (
	"archive/tar"
	"fmt"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PauseImageName is the reference of the locally built pause image, the
// sandbox image a CRI test daemon is configured with. It is not
// registry.k8s.io/pause, so that nothing ever tries to pull it.
const PauseImageName = "localhost/ctrforensics/pause:1"

// PauseImage returns the sandbox (pause) image of CRI pods: the host's static
// busybox alone, running `sleep inf` as PID 1 of the pod, which holds the
// pod's namespaces as registry.k8s.io/pause does. The CRI runtime stops a
// sandbox with SIGKILL, so the missing signal handling does not matter.
func PauseImage() (*Image, error) {
	bin, err := FindBusybox()
	if err != nil {
		return nil, err
	}
	content, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", bin, err)
	}
	return &Image{
		Name: PauseImageName,
		Layers: []Layer{{
			Files: []File{
				Dir("/bin", 0o755),
				{Path: "/bin/busybox", Type: tar.TypeReg, Mode: 0o755, Content: content},
			},
			CreatedBy: "COPY busybox /bin/busybox",
		}},
		Config: ocispec.ImageConfig{
			Entrypoint: []string{"/bin/busybox", "sleep", "inf"},
			User:       "65535:65535",
		},
	}, nil
}
