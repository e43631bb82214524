"""A small bundled list of common English given names (written for voxproof, public-domain knowledge),
used by the personal-data stage to spot personal names in transcripts."""

from __future__ import annotations

FIRST_NAMES = frozenset(
    """
    aaron abigail adam adrian aidan alan albert alex alexander alice alicia allison amanda amber amy andrea
    andrew angela anna anne anthony antonio april arthur ashley austin barbara benjamin beth betty beverly
    bill billy bob bobby bonnie brad bradley brandon brenda brian brittany bruce bryan caleb carl carlos
    carol caroline carolyn catherine charles charlotte cheryl chloe chris christian christina christine
    christopher cindy claire clara connor craig crystal cynthia daniel danielle david deborah debra denise
    dennis derek diana diane donald donna dorothy douglas dylan edward elaine elijah elizabeth ella ellen
    emily emma eric erica ethan eugene evelyn frances frank gabriel gary george gerald gloria grace gregory
    hannah harold harry heather helen henry isaac isabella jack jacob jacqueline james jane janet janice
    jason jean jeffrey jennifer jeremy jerry jesse jessica jill joan joe john johnny jonathan jordan jose
    joseph joshua joyce juan judith judy julia julie justin karen katherine kathleen kathryn kathy katie
    keith kelly kenneth kevin kimberly kyle laura lauren lawrence linda lisa logan lori louis lucas lucy
    luis madison margaret maria marie marilyn mark martha martin mary mason matthew megan melissa michael
    michelle mike nancy natalie nathan nicholas nicole noah olivia pamela patricia patrick paul peter
    philip rachel ralph randy raymond rebecca richard robert robin roger ronald rose roy russell ruth ryan
    samantha samuel sandra sara sarah scott sean sharon shirley sophia stephanie stephen steven susan
    teresa terry theresa thomas timothy tina todd tom tony tyler victoria vincent virginia walter wayne
    william willie zachary
    """.split()
)
