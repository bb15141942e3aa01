"""no revision here"""
down_revision = "nnnn0001"
