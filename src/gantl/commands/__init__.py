"""gantl.commands"""
