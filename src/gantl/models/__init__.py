"""gantl.models"""
