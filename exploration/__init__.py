"""Exploration agents (RND with PPO on Atari; guided safe exploration). Not implemented yet."""
