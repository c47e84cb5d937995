"""Example tasks and the quickstart demo."""
