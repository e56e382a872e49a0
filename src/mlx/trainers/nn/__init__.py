"""Network pieces shared by every trainer: encoders, actor, critic, normaliser."""
