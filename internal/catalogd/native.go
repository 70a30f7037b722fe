package catalogd

import (
	"context"

	"github.com/blang/semver/v4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ferrydev/ferry/internal/catalog"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// CatalogServer implements ferry.catalog.v1.CatalogService.
type CatalogServer struct {
	catalogv1.UnimplementedCatalogServiceServer
	holder    *Holder
	publisher *Publisher
	// status adds the problems of sources outside the catalog served.
	status func(*catalog.Catalog) []catalog.Problem
}

// NewCatalogServer serves the holder's catalog over Ferry's own API.
func NewCatalogServer(h *Holder) *CatalogServer { return &CatalogServer{holder: h} }

// GetCatalogInfo returns the digest, counts and, on request, the problems.
func (s *CatalogServer) GetCatalogInfo(_ context.Context, req *catalogv1.GetCatalogInfoRequest) (*catalogv1.CatalogInfo, error) {
	c := s.holder.Catalog()
	info := catalogInfo(c, req.GetIncludeProblems())
	if s.status != nil {
		for _, p := range s.status(c) {
			info.ProblemCount++
			if req.GetIncludeProblems() {
				info.Problems = append(info.Problems, problemMessage(p))
			}
		}
	}
	return info, nil
}

// ListPackages lists every package.
func (s *CatalogServer) ListPackages(context.Context, *catalogv1.ListPackagesRequest) (*catalogv1.ListPackagesResponse, error) {
	c := s.holder.Catalog()
	out := &catalogv1.ListPackagesResponse{Digest: c.Digest}
	for _, p := range c.Packages {
		sum := &catalogv1.PackageSummary{
			Name: p.Name, DefaultChannel: p.DefaultChannel, BundleCount: int32(len(p.Bundles)),
			Deprecation: deprecation(p.Deprecation),
		}
		for _, ch := range p.Channels {
			sum.Channels = append(sum.Channels, ch.Name)
		}
		if ch := p.Channel(p.DefaultChannel); ch != nil {
			sum.LatestVersion = ch.HeadEntry().Bundle.Version.String()
		}
		out.Packages = append(out.Packages, sum)
	}
	return out, nil
}

// GetPackage returns one package with channels, entries and deprecations.
func (s *CatalogServer) GetPackage(_ context.Context, req *catalogv1.GetPackageRequest) (*catalogv1.Package, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	c := s.holder.Catalog()
	p := c.Package(req.GetName())
	if p == nil {
		return nil, status.Errorf(codes.NotFound, "package %q not found", req.GetName())
	}
	return packageMessage(c, p), nil
}

// ListBundles streams the bundles that pass the filters.
func (s *CatalogServer) ListBundles(req *catalogv1.ListBundlesRequest, stream grpc.ServerStreamingServer[catalogv1.Bundle]) error {
	c := s.holder.Catalog()
	if req.GetChannel() != "" && req.GetPackage() == "" {
		return status.Error(codes.InvalidArgument, "channel needs package")
	}
	var inRange semver.Range
	if req.GetVersionRange() != "" {
		r, err := catalog.ParseRange(req.GetVersionRange())
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "version_range: %v", err)
		}
		inRange = r
	}
	pkgs := c.Packages
	if req.GetPackage() != "" {
		p := c.Package(req.GetPackage())
		if p == nil {
			return status.Errorf(codes.NotFound, "package %q not found", req.GetPackage())
		}
		pkgs = []*catalog.Package{p}
	}
	for _, p := range pkgs {
		bundles := p.Bundles
		if req.GetChannel() != "" {
			ch := p.Channel(req.GetChannel())
			if ch == nil {
				return status.Errorf(codes.NotFound, "channel %q not found in package %q", req.GetChannel(), p.Name)
			}
			bundles = make([]*catalog.Bundle, 0, len(ch.Entries))
			for _, e := range ch.Entries {
				bundles = append(bundles, e.Bundle)
			}
		}
		for _, b := range bundles {
			if inRange != nil && !inRange(b.Version) {
				continue
			}
			m, err := bundleMessage(b, req.GetIncludeManifests())
			if err != nil {
				return err
			}
			if err := stream.Send(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// GetBundle returns one bundle, by name or version, with its manifests.
func (s *CatalogServer) GetBundle(_ context.Context, req *catalogv1.GetBundleRequest) (*catalogv1.Bundle, error) {
	if req.GetPackage() == "" {
		return nil, status.Error(codes.InvalidArgument, "package is required")
	}
	if (req.GetName() == "") == (req.GetVersion() == "") {
		return nil, status.Error(codes.InvalidArgument, "exactly one of name and version is required")
	}
	p := s.holder.Catalog().Package(req.GetPackage())
	if p == nil {
		return nil, status.Errorf(codes.NotFound, "package %q not found", req.GetPackage())
	}
	var b *catalog.Bundle
	if req.GetName() != "" {
		b = p.Bundle(req.GetName())
	} else {
		v, err := catalog.ParseVersion(req.GetVersion())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "version: %v", err)
		}
		b = p.BundleByVersion(v)
	}
	if b == nil {
		return nil, status.Errorf(codes.NotFound, "bundle %s not found in package %q", firstNonEmpty(req.GetName(), req.GetVersion()), p.Name)
	}
	return bundleMessage(b, true)
}

// GetSuccessors returns the entries that upgrade from an installed version.
func (s *CatalogServer) GetSuccessors(_ context.Context, req *catalogv1.GetSuccessorsRequest) (*catalogv1.GetSuccessorsResponse, error) {
	if req.GetPackage() == "" || (req.GetFromVersion() == "" && req.GetFromName() == "") {
		return nil, status.Error(codes.InvalidArgument, "package and one of from_version or from_name are required")
	}
	c := s.holder.Catalog()
	p := c.Package(req.GetPackage())
	if p == nil {
		return nil, status.Errorf(codes.NotFound, "package %q not found", req.GetPackage())
	}
	var from *semver.Version
	name := req.GetFromName()
	if req.GetFromVersion() != "" {
		v, err := catalog.ParseVersion(req.GetFromVersion())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "from_version: %v", err)
		}
		from = &v
		if name == "" {
			b := p.BundleByVersion(v)
			if b == nil {
				return nil, status.Errorf(codes.NotFound, "version %s not found in package %q; pass from_name to look up edges from a bundle no longer served", v, p.Name)
			}
			name = b.Name
		}
	}
	channels := p.Channels
	if req.GetChannel() != "" {
		ch := p.Channel(req.GetChannel())
		if ch == nil {
			return nil, status.Errorf(codes.NotFound, "channel %q not found in package %q", req.GetChannel(), p.Name)
		}
		channels = []*catalog.Channel{ch}
	}
	out := &catalogv1.GetSuccessorsResponse{Digest: c.Digest}
	for _, ch := range channels {
		for _, succ := range ch.Successors(name, from) {
			out.Successors = append(out.Successors, &catalogv1.Successor{
				Channel: ch.Name, Entry: entryMessage(succ.Entry), Edge: string(succ.Edge),
			})
		}
	}
	return out, nil
}

// GetSnapshot streams info, packages and bundles of one catalog digest.
func (s *CatalogServer) GetSnapshot(req *catalogv1.GetSnapshotRequest, stream grpc.ServerStreamingServer[catalogv1.SnapshotChunk]) error {
	c := s.holder.Catalog()
	notModified := req.GetIfNoneMatch() != "" && req.GetIfNoneMatch() == c.Digest
	if err := stream.Send(&catalogv1.SnapshotChunk{
		Item:        &catalogv1.SnapshotChunk_Info{Info: catalogInfo(c, false)},
		NotModified: notModified,
	}); err != nil || notModified {
		return err
	}
	for _, p := range c.Packages {
		if err := stream.Send(&catalogv1.SnapshotChunk{Item: &catalogv1.SnapshotChunk_Package{Package: packageMessage(c, p)}}); err != nil {
			return err
		}
	}
	for _, p := range c.Packages {
		for _, b := range p.Bundles {
			m, err := bundleMessage(b, false)
			if err != nil {
				return err
			}
			if err := stream.Send(&catalogv1.SnapshotChunk{Item: &catalogv1.SnapshotChunk_Bundle{Bundle: m}}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Watch sends the catalog info now and after every change, until the client leaves.
func (s *CatalogServer) Watch(_ *catalogv1.WatchRequest, stream grpc.ServerStreamingServer[catalogv1.CatalogEvent]) error {
	for {
		c, changed := s.holder.Current()
		if err := stream.Send(&catalogv1.CatalogEvent{Info: catalogInfo(c, false)}); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-changed:
		}
	}
}

func catalogInfo(c *catalog.Catalog, withProblems bool) *catalogv1.CatalogInfo {
	n := c.Counts()
	info := &catalogv1.CatalogInfo{
		Digest: c.Digest, PackageCount: int32(n.Packages), ChannelCount: int32(n.Channels), BundleCount: int32(n.Bundles),
		LoadedAt: timestamppb.New(c.LoadedAt), Sources: c.Sources, ProblemCount: int32(len(c.Problems)),
	}
	if withProblems {
		for _, p := range c.Problems {
			info.Problems = append(info.Problems, problemMessage(p))
		}
	}
	return info
}

func problemMessage(p catalog.Problem) *catalogv1.Problem {
	return &catalogv1.Problem{Path: p.Path, Field: p.Field, Reason: p.Reason, Severity: string(p.Severity), Package: p.Package, Bundle: p.Bundle}
}

func packageMessage(c *catalog.Catalog, p *catalog.Package) *catalogv1.Package {
	out := &catalogv1.Package{
		Name: p.Name, DefaultChannel: p.DefaultChannel, Description: p.Description,
		Deprecation: deprecation(p.Deprecation), Digest: c.Digest,
	}
	for _, ch := range p.Channels {
		m := &catalogv1.Channel{Name: ch.Name, Head: ch.Head, HeadVersion: ch.HeadEntry().Bundle.Version.String(), Deprecation: deprecation(ch.Deprecation)}
		for _, e := range ch.Entries {
			m.Entries = append(m.Entries, entryMessage(e))
		}
		out.Channels = append(out.Channels, m)
	}
	return out
}

func entryMessage(e *catalog.ChannelEntry) *catalogv1.ChannelEntry {
	return &catalogv1.ChannelEntry{
		Name: e.Name, Version: e.Bundle.Version.String(), Replaces: e.Replaces, Skips: e.Skips,
		SkipRange: e.SkipRange, Deprecation: deprecation(e.Bundle.Deprecation),
	}
}

func bundleMessage(b *catalog.Bundle, withManifests bool) (*catalogv1.Bundle, error) {
	out := &catalogv1.Bundle{
		Package: b.Package, Name: b.Name, Version: b.Version.String(), Image: b.Image, Channels: b.Channels,
		Deprecation: deprecation(b.Deprecation), Digest: b.Digest(), ManifestsDigest: b.ManifestsDigest(),
	}
	for _, p := range b.Properties {
		out.Properties = append(out.Properties, &catalogv1.Property{Type: p.Type, Value: string(p.Value)})
	}
	for _, g := range b.ProvidedAPIs {
		out.ProvidedApis = append(out.ProvidedApis, &catalogv1.GroupVersionKind{Group: g.Group, Version: g.Version, Kind: g.Kind})
	}
	for _, g := range b.RequiredAPIs {
		out.RequiredApis = append(out.RequiredApis, &catalogv1.GroupVersionKind{Group: g.Group, Version: g.Version, Kind: g.Kind})
	}
	for _, r := range b.RequiredPackages {
		out.RequiredPackages = append(out.RequiredPackages, &catalogv1.PackageRequirement{PackageName: r.PackageName, VersionRange: r.VersionRange})
	}
	for _, r := range b.RelatedImages {
		out.RelatedImages = append(out.RelatedImages, &catalogv1.RelatedImage{Name: r.Name, Image: r.Image})
	}
	if withManifests {
		ms, err := b.Manifests()
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "bundle %q: %v", b.Name, err)
		}
		for _, m := range ms {
			out.Manifests = append(out.Manifests, &catalogv1.Manifest{ApiVersion: m.APIVersion, Kind: m.Kind, Name: m.Name, Json: string(m.JSON)})
		}
		if out.ManifestsDigest == "" && b.Image != "" {
			// A bundle listed by image only, pulled on this request: the
			// loaded catalog announces its digest only after the reload
			// the pull triggers. Say what was computed, so that a client
			// tells this bundle from one of a catalogd that announces no
			// digests; it installs only once a snapshot announces it.
			out.ManifestsDigest = catalog.ManifestsDigest(ms)
		}
	}
	return out, nil
}

func deprecation(d *catalog.Deprecation) *catalogv1.Deprecation {
	if d == nil {
		return nil
	}
	return &catalogv1.Deprecation{Message: d.Message}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
