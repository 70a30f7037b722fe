package crdsafety

import (
	"context"
	"fmt"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	apiservercel "k8s.io/apiserver/pkg/apis/cel"
)

// objectValidator validates custom resources the way kube-apiserver does on
// a write through one CRD version: prune unknown fields, apply defaults,
// then OpenAPI schema validation, list-type (set/map) validation and CEL
// rules.
type objectValidator struct {
	structural *structuralschema.Structural
	openAPI    validation.SchemaValidator
	cel        *cel.Validator
}

func newObjectValidator(v *apiextensionsv1.CustomResourceDefinitionVersion) (*objectValidator, error) {
	if v == nil || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
		return nil, nil
	}
	internal := &apiextensions.JSONSchemaProps{}
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, internal, nil); err != nil {
		return nil, fmt.Errorf("converting the schema of version %s: %w", v.Name, err)
	}
	s, err := structuralschema.NewStructural(internal)
	if err != nil {
		return nil, fmt.Errorf("schema of version %s is not structural: %w", v.Name, err)
	}
	openAPI, _, err := validation.NewSchemaValidator(internal)
	if err != nil {
		return nil, fmt.Errorf("building the validator of version %s: %w", v.Name, err)
	}
	return &objectValidator{
		structural: s,
		openAPI:    openAPI,
		cel:        cel.NewValidator(s, true, apiservercel.PerCallLimit),
	}, nil
}

// validate returns the errors of obj, which it does not modify.
func (v *objectValidator) validate(ctx context.Context, obj map[string]any) field.ErrorList {
	if v == nil {
		return nil
	}
	u := runtime.DeepCopyJSON(obj)
	structuralpruning.Prune(u, v.structural, true)
	structuraldefaulting.Default(u, v.structural)

	errs := validation.ValidateCustomResource(nil, u, v.openAPI)
	errs = append(errs, listtype.ValidateListSetsAndMaps(nil, v.structural, u)...)
	if v.cel != nil {
		celErrs, _ := v.cel.Validate(ctx, nil, v.structural, u, nil, apiservercel.RuntimeCELCostBudget)
		errs = append(errs, celErrs...)
	}
	return errs
}
