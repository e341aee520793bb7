"""Tests of the registration desk and its status texts."""
