package testimage

import (
	"archive/tar"
	"context"
	"fmt"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// WebImageName is the reference of the demo/test web image.
const WebImageName = "docker.io/ctrforensics/demo-web:1"

// webTimes returns the fixed modification times (whole seconds) of the web
// content layer.
func webTimes() (site, static, cfg, data, doc time.Time) {
	return time.Date(2024, time.February, 3, 10, 20, 30, 0, time.UTC),
		time.Date(2024, time.February, 3, 10, 21, 0, 0, time.UTC),
		time.Date(2024, time.February, 4, 8, 0, 0, 0, time.UTC),
		time.Date(2024, time.March, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2024, time.January, 15, 9, 30, 0, 0, time.UTC)
}

// WebImage returns the demo/test web image docker.io/ctrforensics/demo-web:1.
//
// Layer 1 is Busybox(). Layer 2 holds the site:
//
//	/var/www/html/index.html, about.html (same mtime as index.html), app.php
//	/var/www/html/static/{style.css,app.js,logo.svg}
//	/etc/app/config.ini
//	/opt/data/{customers.csv,notes.txt,report.txt}  (for delete-and-recreate tests)
//	/usr/share/doc/web/README
//
// /var/www/html and its content are owned by www-data (33:33). All times
// are fixed whole seconds. The image runs busybox httpd on port 8080. It
// deliberately contains no /run directory.
func WebImage(ctx context.Context) (*Image, error) {
	base, err := Busybox(ctx)
	if err != nil {
		return nil, fmt.Errorf("web image base layer: %w", err)
	}
	site, static, cfg, data, doc := webTimes()
	www := func(p string, typ byte, mode int64, mtime time.Time, content string) File {
		return File{Path: p, Type: typ, Mode: mode, UID: 33, GID: 33, ModTime: mtime, Content: []byte(content)}
	}
	at := func(f File, t time.Time) File {
		f.ModTime = t
		return f
	}

	web := []File{
		at(Dir("/var/www", 0o755), site),
		www("/var/www/html", tar.TypeDir, 0o755, site, ""),
		www("/var/www/html/index.html", tar.TypeReg, 0o644, site,
			"<!DOCTYPE html>\n<html><head><title>Demo</title></head>\n<body><h1>Welcome</h1></body></html>\n"),
		www("/var/www/html/about.html", tar.TypeReg, 0o644, site,
			"<!DOCTYPE html>\n<html><head><title>About</title></head>\n<body><h1>About us</h1><p>A small demo site.</p></body></html>\n"),
		www("/var/www/html/app.php", tar.TypeReg, 0o644, site,
			"<?php\n$ini = parse_ini_file('/etc/app/config.ini');\necho 'Hello from ' . htmlspecialchars($ini['name']);\n"),
		www("/var/www/html/static", tar.TypeDir, 0o755, static, ""),
		www("/var/www/html/static/style.css", tar.TypeReg, 0o644, static,
			"body { font-family: sans-serif; margin: 2em; }\nh1 { color: #336; }\n"),
		www("/var/www/html/static/app.js", tar.TypeReg, 0o644, static,
			"document.addEventListener('DOMContentLoaded', function () {\n  console.log('demo-web ready');\n});\n"),
		www("/var/www/html/static/logo.svg", tar.TypeReg, 0o644, static,
			"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"16\" height=\"16\"><rect width=\"16\" height=\"16\" fill=\"#336\"/></svg>\n"),

		at(Dir("/etc/app", 0o755), cfg),
		at(Reg("/etc/app/config.ini", 0o640, "[app]\nname = demo-web\nlisten = 0.0.0.0:8080\ndebug = false\n\n[db]\nhost = db.internal\nuser = web\npassword = s3cr3t\n"), cfg),

		at(Dir("/opt", 0o755), data),
		at(Dir("/opt/data", 0o755), data),
		at(Reg("/opt/data/customers.csv", 0o644, "id,name,email\n1,Alice,alice@example.com\n2,Bob,bob@example.com\n3,Carol,carol@example.com\n"), data),
		at(Reg("/opt/data/notes.txt", 0o644, "Quarterly numbers are in report.txt.\n"), data),
		at(Reg("/opt/data/report.txt", 0o600, "Q1 revenue: 1000\nQ2 revenue: 1200\n"), data),

		at(Dir("/usr", 0o755), doc),
		at(Dir("/usr/share", 0o755), doc),
		at(Dir("/usr/share/doc", 0o755), doc),
		at(Dir("/usr/share/doc/web", 0o755), doc),
		at(Reg("/usr/share/doc/web/README", 0o644, "demo-web: a tiny static site served by busybox httpd.\n"), doc),
	}

	return &Image{
		Name: WebImageName,
		Layers: []Layer{
			{Files: base, CreatedBy: "ADD busybox-static rootfs /", Comment: "busybox base"},
			{Files: web, CreatedBy: "COPY site/ /", Comment: "web content"},
		},
		Config: ocispec.ImageConfig{
			Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd:        []string{"/bin/httpd", "-f", "-p", "8080", "-h", "/var/www/html"},
			WorkingDir: "/var/www/html",
			ExposedPorts: map[string]struct{}{
				"8080/tcp": {},
			},
			Labels: map[string]string{"org.opencontainers.image.title": "demo-web"},
		},
	}, nil
}
