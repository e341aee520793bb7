"""Custom NLU components for the Rasa pipeline."""
