"""annotate's pages: sign-in (auth.py), the dashboard and campaign overview (campaigns.py), crowd entry and labeling (labeling.py)."""
