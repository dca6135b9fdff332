"""The service-center role: the ACD run live, agents' desktops, queue statistics.

`acd/` is the pure core; this package is its asyncio adapter (`AcdService`), the
registry of agents' open event sockets (`AgentDesktops`) and the screen pop.
"""
