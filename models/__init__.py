"""Model code: purchase-count and spend models, CLV, the churn-type classifier."""
