"""Statistics of pairwise comparisons: Bradley-Terry leaderboards with ties, their bootstrap CIs
and agreement, pair-level agreement and biases, and system-level agreement of direct assessment."""
