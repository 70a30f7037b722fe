package v1alpha1

import "time"

// Defaults of SubscriptionSpec. Each is the value of the field's
// +kubebuilder:default marker (TestDefaultsMatchTheCRD checks that they
// agree), so the API server fills them in; the Go values serve objects that
// were never defaulted by it (created before a field existed, or built in
// code), through the Effective methods below. An empty channel is not
// defaulted: it means the package's default channel, resolved against the
// catalog.
const (
	// DefaultApproval is spec.approval when unset.
	DefaultApproval = ApprovalAutomatic
	// DefaultHealthTimeout is spec.healthTimeout when unset.
	DefaultHealthTimeout = 5 * time.Minute
	// DefaultRevisionHistoryLimit is spec.revisionHistoryLimit when unset.
	DefaultRevisionHistoryLimit int32 = 10
	// DefaultRollbackPolicy is spec.rollbackPolicy when unset.
	DefaultRollbackPolicy = RollbackAutomatic
	// DefaultCRDUpgradeSafety is spec.crdUpgradeSafety when unset.
	DefaultCRDUpgradeSafety = CRDSafetyStrict
	// DefaultCRDDeletionPolicy is spec.crdDeletionPolicy when unset.
	DefaultCRDDeletionPolicy = CRDDeletionKeep
	// DefaultAdoptionPolicy is spec.adoption.policy when unset.
	DefaultAdoptionPolicy = AdoptionNone
)

// EffectiveApproval is spec.approval, or its default.
func (s *SubscriptionSpec) EffectiveApproval() Approval {
	if s.Approval == "" {
		return DefaultApproval
	}
	return s.Approval
}

// EffectiveHealthTimeout is spec.healthTimeout, or its default when unset
// or not positive.
func (s *SubscriptionSpec) EffectiveHealthTimeout() time.Duration {
	if s.HealthTimeout == nil || s.HealthTimeout.Duration <= 0 {
		return DefaultHealthTimeout
	}
	return s.HealthTimeout.Duration
}

// EffectiveRevisionHistoryLimit is spec.revisionHistoryLimit, or its
// default when unset or not positive.
func (s *SubscriptionSpec) EffectiveRevisionHistoryLimit() int {
	if s.RevisionHistoryLimit == nil || *s.RevisionHistoryLimit <= 0 {
		return int(DefaultRevisionHistoryLimit)
	}
	return int(*s.RevisionHistoryLimit)
}

// EffectiveRollbackPolicy is spec.rollbackPolicy, or its default.
func (s *SubscriptionSpec) EffectiveRollbackPolicy() RollbackPolicy {
	if s.RollbackPolicy == "" {
		return DefaultRollbackPolicy
	}
	return s.RollbackPolicy
}

// EffectiveCRDUpgradeSafety is spec.crdUpgradeSafety, or its default.
func (s *SubscriptionSpec) EffectiveCRDUpgradeSafety() CRDUpgradeSafety {
	if s.CRDUpgradeSafety == "" {
		return DefaultCRDUpgradeSafety
	}
	return s.CRDUpgradeSafety
}

// EffectiveCRDDeletionPolicy is spec.crdDeletionPolicy, or its default.
func (s *SubscriptionSpec) EffectiveCRDDeletionPolicy() CRDDeletionPolicy {
	if s.CRDDeletionPolicy == "" {
		return DefaultCRDDeletionPolicy
	}
	return s.CRDDeletionPolicy
}

// EffectiveAdoptionPolicy is spec.adoption.policy, or its default.
func (s *SubscriptionSpec) EffectiveAdoptionPolicy() AdoptionPolicy {
	if s.Adoption == nil || s.Adoption.Policy == "" {
		return DefaultAdoptionPolicy
	}
	return s.Adoption.Policy
}
