package router

import "testing"

func TestValues(t *testing.T) {
	type k1 struct{}
	type k2 struct{}
	var v Values
	if v.Value(k1{}) != nil {
		t.Fatal("value before any was set")
	}
	v.SetValue(k1{}, 1)
	v.SetValue(k2{}, "two")
	v.SetValue(k1{}, 3)
	if v.Value(k1{}) != 3 || v.Value(k2{}) != "two" {
		t.Fatalf("got %v %v", v.Value(k1{}), v.Value(k2{}))
	}
	v.SetValue(k1{}, nil)
	if v.Value(k1{}) != nil || v.Value(k2{}) != "two" {
		t.Fatalf("after removing k1: %v %v", v.Value(k1{}), v.Value(k2{}))
	}
	v.SetValue(k2{}, nil)
	v.SetValue(k2{}, nil)
	if v.vs != nil {
		t.Fatalf("empty Values keeps %v", v.vs)
	}
}
