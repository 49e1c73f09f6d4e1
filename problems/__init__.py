"""Routing problems (TSP, CVRP, SDVRP, OP, PCTSP, SPCTSP) and their solvers. Not implemented yet."""
