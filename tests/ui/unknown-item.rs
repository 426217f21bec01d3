bp::network! {
    struct Net {
        inptu x: [4];
        let h = linear(x, 3);
        output h;
    }
}

fn main() {}
